/* The cfg language: Darknet's `[section]` + `key=value` format, made strict.
 * Every key remembers its line so that any mistake can be reported as
 * "file:line: [section] (layer N) key 'k': what is wrong". */
#ifndef CDB_CFG_H
#define CDB_CFG_H

typedef struct {
    char *key;
    char *value;
    int line; /* 0 when the value came from the command line (-set) */
    int used; /* set when a reader consumed it; unused keys are errors */
} cfg_kv;

typedef struct {
    char *type; /* "net", "convolutional", ... (as written, lower case) */
    int line;
    cfg_kv *kv;
    int n, cap;
} cfg_section;

typedef struct cfg_file {
    char *path;
    cfg_section *sections;
    int n, cap;
} cfg_file;

cfg_file *cdb_cfg_parse_file(const char *path);
cfg_file *cdb_cfg_parse_string(const char *name, const char *text);
/* A file of bare key=value lines (a .data file), read as one section. */
cfg_file *cdb_cfg_parse_keyvalue_file(const char *path, const char *section, const char *kind);
void cdb_cfg_free(cfg_file *f);
/* A new cfg_file holding a copy of section `section` alone (its keys,
 * values and lines, none marked used) under the same path; NULL out of
 * memory (recorded). */
cfg_file *cdb_cfg_copy_section(const cfg_file *f, int section);

/* Apply a command-line override "SECTION.key=value" where SECTION is `net`
 * or a layer index as printed in the network summary. net.max_batches or
 * net.max_epochs replaces whichever of the two the file gave. */
int cdb_cfg_override(cfg_file *f, const char *assignment);

/* A reader walks one section. The first error is recorded in the reader
 * (and in cdb_last_error) and later reads of the same reader are no-ops, so
 * a builder can read every key and check `r->failed` once at the end. */
typedef struct {
    const cfg_file *file;
    cfg_section *sec;
    int layer_index; /* -1 for [net] */
    int failed;
} cfg_reader;

cfg_reader cdb_cfg_reader_for(const cfg_file *f, int section, int layer_index);
int cdb_cfg_has(cfg_reader *r, const char *key);
int cdb_cfg_int(cfg_reader *r, const char *key, int def, int min, int max);
float cdb_cfg_float(cfg_reader *r, const char *key, float def, float min, float max);
const char *cdb_cfg_str(cfg_reader *r, const char *key, const char *def);
/* Index of the value among `choices` (NULL-terminated); `def` if absent. */
int cdb_cfg_choice(cfg_reader *r, const char *key, const char *const *choices, int def);
/* Comma-separated lists; returns the count, or -1 on error. */
int cdb_cfg_int_list(cfg_reader *r, const char *key, int *out, int max);
int cdb_cfg_float_list(cfg_reader *r, const char *key, float *out, int max);
/* Record a semantic error against a key (or the section when key is NULL). */
void cdb_cfg_fail(cfg_reader *r, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* What a Darknet layer type that cdbnet refuses is (for the message), or
 * NULL when `type` is none of them. */
const char *cdb_cfg_darknet_refused_section(const char *type);
/* Fails on the first key of the section nobody read (a Darknet key cdbnet
 * refuses is named as such; set to 0 it is accepted, switched off). */
int cdb_cfg_check_unused(cfg_reader *r);

#endif
