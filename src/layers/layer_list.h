/* Every layer type, one line each, in the order `cdbnet` lists them:
 * LAYER(name) is the layer_ops `name_layer_ops` that src/layers/name_layer.c
 * defines (its cfg section name, aliases, what input it takes, make, forward,
 * backward and the GPU twins or NULL). A new layer type is its own files and
 * one line here. No include guard: registry.c includes it once per use. */
LAYER(convolutional)
LAYER(connected)
LAYER(batchnorm)
LAYER(crop)
LAYER(maxpool)
LAYER(avgpool)
LAYER(local_avgpool)
LAYER(scale_channels)
LAYER(shortcut)
LAYER(route)
LAYER(shuffle)
LAYER(dropout)
LAYER(activation)
LAYER(softmax)
LAYER(cost)
LAYER(logistic)
LAYER(tokens)
LAYER(cls_token)
LAYER(pos_embed)
LAYER(layernorm)
LAYER(attention)
LAYER(token_pool)
