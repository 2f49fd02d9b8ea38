/* The table of layer types, made from layer_list.h. */
#include <string.h>

#include "layers.h"

#define LAYER(name) extern const layer_ops cdb_##name##_layer_ops;
#include "layer_list.h"
#undef LAYER

static const layer_ops *const layer_types[] = {
#define LAYER(name) &cdb_##name##_layer_ops,
#include "layer_list.h"
#undef LAYER
};
#define N_LAYER_TYPES ((int)(sizeof(layer_types) / sizeof(layer_types[0])))

const layer_ops *cdb_layer_ops_find(const char *section)
{
    for (int i = 0; i < N_LAYER_TYPES; i++)
        if (!strcmp(section, layer_types[i]->name) || (layer_types[i]->alias && !strcmp(section, layer_types[i]->alias)))
            return layer_types[i];
    return NULL;
}

const char *cdb_layer_type_names(void)
{
#define LAYER(name) ", " #name
    static const char names[] =
#include "layer_list.h"
        ;
#undef LAYER
    return names + 2; /* past the first ", " */
}
