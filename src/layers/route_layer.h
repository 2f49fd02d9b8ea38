/* What a [route] layer keeps, shared by route_layer.c and its GPU kernels. */
#ifndef CDB_ROUTE_LAYER_H
#define CDB_ROUTE_LAYER_H

#include "network.h"

#define ROUTE_MAX 16

typedef struct {
    int n;
    int from[ROUTE_MAX];
    int groups, group_id; /* each source gives its channels of part group_id of groups */
} route_priv;

/* The part of source i that the route takes, per image: part floats from
 * offset floats into the source's image. */
static inline void route_part(const route_priv *p, const cdb_layer *src, size_t *offset, size_t *part)
{
    size_t per_group = (size_t)src->outputs / p->groups;
    *offset = per_group * p->group_id;
    *part = per_group;
}

#endif
