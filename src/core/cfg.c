#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

/* A value as messages show it: whole, or its first 60 bytes and its length
 * (a 200 kB value must not fill the terminal). buf holds at least 96. */
static const char *shown(const char *v, char *buf, size_t n)
{
    size_t len = strlen(v);
    if (len <= 60) return v;
    snprintf(buf, n, "%.60s... (%zu bytes)", v, len);
    return buf;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static cfg_kv *find_kv(cfg_section *s, const char *key)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->kv[i].key, key)) return &s->kv[i];
    return NULL;
}

/* 0, or -1 out of memory (the error recorded, s unchanged) */
static int add_kv(cfg_section *s, const char *key, const char *value, int line)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        cfg_kv *grown = cdb_xrealloc(s->kv, (size_t)cap * sizeof(cfg_kv));
        if (!grown) return -1;
        s->kv = grown;
        s->cap = cap;
    }
    cfg_kv kv = {cdb_xstrdup(key), cdb_xstrdup(value), line, 0};
    if (!kv.key || !kv.value) {
        free(kv.key);
        free(kv.value);
        return -1;
    }
    s->kv[s->n++] = kv;
    return 0;
}

/* the new section, or NULL out of memory */
static cfg_section *add_section(cfg_file *f, const char *type, int line)
{
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        cfg_section *grown = cdb_xrealloc(f->sections, (size_t)cap * sizeof(cfg_section));
        if (!grown) return NULL;
        f->sections = grown;
        f->cap = cap;
    }
    char *name = cdb_xstrdup(type);
    if (!name) return NULL;
    cfg_section *s = &f->sections[f->n++];
    memset(s, 0, sizeof(*s));
    s->type = name;
    for (char *p = s->type; *p; p++) *p = (char)tolower((unsigned char)*p);
    s->line = line;
    return s;
}

static cfg_file *parse_text(const char *name, const char *text, const char *implicit_section)
{
    cfg_file *f = cdb_xcalloc(1, sizeof(cfg_file));
    if (!f) return NULL;
    f->path = cdb_xstrdup(name);
    char *buf = cdb_xstrdup(text);
    if (!f->path || !buf || (implicit_section && !add_section(f, implicit_section, 1))) goto fail;
    int line_no = 0;
    char *cursor = buf;
    while (cursor) {
        char *line = cursor;
        char *nl = strchr(cursor, '\n');
        if (nl) {
            *nl = 0;
            cursor = nl + 1;
        } else {
            cursor = NULL;
        }
        line_no++;
        char *hash = strpbrk(line, "#;");
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || trim(close + 1)[0]) {
                cdb_set_error("%s:%d: malformed section header '%s' (expected [name])", name, line_no, s);
                goto fail;
            }
            *close = 0;
            char *type = trim(s + 1);
            if (!*type) {
                cdb_set_error("%s:%d: empty section name '[]'", name, line_no);
                goto fail;
            }
            if (!add_section(f, type, line_no)) goto fail;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            char text[96];
            cdb_set_error("%s:%d: expected 'key=value' or '[section]', got '%s'", name, line_no, shown(s, text, sizeof(text)));
            goto fail;
        }
        *eq = 0;
        char *key = trim(s), *value = trim(eq + 1);
        if (!*key) {
            cdb_set_error("%s:%d: missing key before '='", name, line_no);
            goto fail;
        }
        if (f->n == 0) {
            cdb_set_error("%s:%d: key '%s' appears before any [section]", name, line_no, key);
            goto fail;
        }
        cfg_section *sec = &f->sections[f->n - 1];
        cfg_kv *old = find_kv(sec, key);
        if (old) {
            /* Darknet takes the first value (AlexeyAB's efficientnet_b0.cfg
             * gives momentum and decay twice); so does cdbnet, saying so. */
            if (!strcmp(old->value, value))
                fprintf(stderr, "warning: %s:%d: [%s] key '%s' given again, with the same value as on line %d\n", name,
                        line_no, sec->type, key, old->line);
            else {
                char k[96], v[96], o[96];
                fprintf(stderr,
                        "warning: %s:%d: [%s] key '%s' given again: '%s' here, '%s' on line %d; the first is used, "
                        "as in Darknet\n",
                        name, line_no, sec->type, shown(key, k, sizeof(k)), shown(value, v, sizeof(v)),
                        shown(old->value, o, sizeof(o)), old->line);
            }
            continue;
        }
        if (add_kv(sec, key, value, line_no)) goto fail;
    }
    free(buf);
    if (f->n == 0) {
        cdb_set_error("%s: no sections found (a cfg starts with [net])", name);
        cdb_cfg_free(f);
        return NULL;
    }
    return f;
fail:
    free(buf);
    cdb_cfg_free(f);
    return NULL;
}

cfg_file *cdb_cfg_parse_string(const char *name, const char *text) { return parse_text(name, text, NULL); }

static cfg_file *parse_file(const char *path, const char *implicit_section, const char *kind)
{
    if (cdb_check_regular(path, kind)) return NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        cdb_set_error("cannot open %s '%s': %s", kind, path, strerror(errno));
        return NULL;
    }
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    if (size < 0) {
        fclose(fp);
        cdb_set_error("cannot read %s '%s'", kind, path);
        return NULL;
    }
    char *text = cdb_xmalloc((size_t)size + 1);
    if (!text) {
        fclose(fp);
        return NULL;
    }
    size_t got = fread(text, 1, (size_t)size, fp);
    fclose(fp);
    text[got] = 0;
    const char *nul = memchr(text, 0, got);
    if (nul) {
        int line = 1;
        for (const char *c = text; c < nul; c++) line += *c == '\n';
        free(text);
        cdb_set_error("%s:%d: not a text file (a NUL byte)", path, line);
        return NULL;
    }
    cfg_file *f = parse_text(path, text, implicit_section);
    free(text);
    return f;
}

cfg_file *cdb_cfg_parse_file(const char *path) { return parse_file(path, NULL, "cfg file"); }

cfg_file *cdb_cfg_parse_keyvalue_file(const char *path, const char *section, const char *kind)
{
    return parse_file(path, section, kind);
}

void cdb_cfg_free(cfg_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        cfg_section *s = &f->sections[i];
        for (int j = 0; j < s->n; j++) {
            free(s->kv[j].key);
            free(s->kv[j].value);
        }
        free(s->kv);
        free(s->type);
    }
    free(f->sections);
    free(f->path);
    free(f);
}

int cdb_cfg_override(cfg_file *f, const char *assignment)
{
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    if (!dot || !eq || eq < dot) {
        cdb_set_error("-set '%s': expected SECTION.key=value (SECTION is 'net' or a layer index)", assignment);
        return -1;
    }
    char section[64], key[128];
    size_t ls = (size_t)(dot - assignment), lk = (size_t)(eq - dot - 1);
    if (ls == 0 || ls >= sizeof(section) || lk == 0 || lk >= sizeof(key)) {
        cdb_set_error("-set '%s': expected SECTION.key=value", assignment);
        return -1;
    }
    memcpy(section, assignment, ls);
    section[ls] = 0;
    memcpy(key, dot + 1, lk);
    key[lk] = 0;
    int idx;
    if (!strcmp(section, "net")) {
        idx = 0;
    } else if (cdb_parse_int_strict(section, &idx) == 0 && idx >= 0 && idx + 1 < f->n) {
        idx += 1; /* layer i is section i+1 */
    } else {
        cdb_set_error("-set '%s': no section '%s' (use 'net' or a layer index 0..%d)", assignment, section,
                      f->n - 2);
        return -1;
    }
    cfg_section *s = &f->sections[idx];
    /* A training length from the command line replaces the cfg's, whichever
     * of max_batches / max_epochs the cfg gave (both from -set stays an
     * error). */
    if (idx == 0 && (!strcmp(key, "max_batches") || !strcmp(key, "max_epochs"))) {
        cfg_kv *other = find_kv(s, !strcmp(key, "max_batches") ? "max_epochs" : "max_batches");
        if (other && other->line != 0) {
            int at = (int)(other - s->kv);
            free(other->key);
            free(other->value);
            memmove(other, other + 1, (size_t)(s->n - at - 1) * sizeof(*other));
            s->n--;
        }
    }
    cfg_kv *kv = find_kv(s, key);
    if (kv) {
        char *value = cdb_xstrdup(eq + 1);
        if (!value) return -1;
        free(kv->value);
        kv->value = value;
        kv->line = 0;
        return 0;
    }
    return add_kv(s, key, eq + 1, 0);
}

cfg_reader cdb_cfg_reader_for(const cfg_file *f, int section, int layer_index)
{
    cfg_reader r = {f, &f->sections[section], layer_index, 0};
    return r;
}

cfg_file *cdb_cfg_copy_section(const cfg_file *f, int section)
{
    cfg_file *copy = cdb_xcalloc(1, sizeof(*copy));
    if (!copy) return NULL;
    copy->path = cdb_xstrdup(f->path);
    const cfg_section *from = &f->sections[section];
    cfg_section *to = copy->path ? add_section(copy, from->type, from->line) : NULL;
    for (int k = 0; to && k < from->n; k++)
        if (add_kv(to, from->kv[k].key, from->kv[k].value, from->kv[k].line)) to = NULL;
    if (!to) {
        cdb_cfg_free(copy);
        return NULL;
    }
    return copy;
}

/* "file:line: [type] (layer N)" prefix for messages. */
static void where(cfg_reader *r, const cfg_kv *kv, char *buf, size_t n)
{
    char layer[32] = "";
    if (r->layer_index >= 0) snprintf(layer, sizeof(layer), " (layer %d)", r->layer_index);
    if (kv && kv->line == 0)
        snprintf(buf, n, "%s: [%s]%s (set on the command line)", r->file->path, r->sec->type, layer);
    else
        snprintf(buf, n, "%s:%d: [%s]%s", r->file->path, kv ? kv->line : r->sec->line, r->sec->type, layer);
}

void cdb_cfg_fail(cfg_reader *r, const char *key, const char *fmt, ...)
{
    if (r->failed) return;
    r->failed = 1;
    char msg[1024], loc[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg_kv *kv = key ? find_kv(r->sec, key) : NULL;
    where(r, kv, loc, sizeof(loc));
    if (key)
        cdb_set_error("%s key '%s': %s", loc, key, msg);
    else
        cdb_set_error("%s: %s", loc, msg);
}

static cfg_kv *take(cfg_reader *r, const char *key)
{
    if (r->failed) return NULL;
    cfg_kv *kv = find_kv(r->sec, key);
    if (kv) kv->used = 1;
    return kv;
}

int cdb_cfg_has(cfg_reader *r, const char *key) { return find_kv(r->sec, key) != NULL; }

int cdb_cfg_int(cfg_reader *r, const char *key, int def, int min, int max)
{
    cfg_kv *kv = take(r, key);
    if (!kv) return def;
    int v;
    if (cdb_parse_int_strict(kv->value, &v)) {
        char text[96];
        cdb_cfg_fail(r, key, "'%s' is not an integer", shown(kv->value, text, sizeof(text)));
        return def;
    }
    if (v < min || v > max) {
        cdb_cfg_fail(r, key, "%d is out of range [%d, %d]", v, min, max);
        return def;
    }
    return v;
}

float cdb_cfg_float(cfg_reader *r, const char *key, float def, float min, float max)
{
    cfg_kv *kv = take(r, key);
    if (!kv) return def;
    float v;
    if (cdb_parse_float_strict(kv->value, &v)) {
        char text[96];
        cdb_cfg_fail(r, key, "'%s' is not a number", shown(kv->value, text, sizeof(text)));
        return def;
    }
    if (v < min || v > max) {
        cdb_cfg_fail(r, key, "%g is out of range [%g, %g]", v, min, max);
        return def;
    }
    return v;
}

const char *cdb_cfg_str(cfg_reader *r, const char *key, const char *def)
{
    cfg_kv *kv = take(r, key);
    if (!kv) return def;
    if (!kv->value[0]) {
        cdb_cfg_fail(r, key, "empty value");
        return def;
    }
    return kv->value;
}

int cdb_cfg_choice(cfg_reader *r, const char *key, const char *const *choices, int def)
{
    cfg_kv *kv = take(r, key);
    if (!kv) return def;
    for (int i = 0; choices[i]; i++)
        if (!strcmp(kv->value, choices[i])) return i;
    char list[512] = "";
    for (int i = 0; choices[i]; i++) {
        if (i) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
        strncat(list, choices[i], sizeof(list) - strlen(list) - 1);
    }
    char text[96];
    cdb_cfg_fail(r, key, "'%s' is not one of: %s", shown(kv->value, text, sizeof(text)), list);
    return def;
}

static int split_list(cfg_reader *r, const char *key, int max, int is_float, void *out)
{
    cfg_kv *kv = take(r, key);
    if (!kv) return r->failed ? -1 : 0;
    char *copy = cdb_xstrdup(kv->value);
    if (!copy) {
        cdb_cfg_fail(r, key, "%s", cdb_last_error());
        return -1;
    }
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok);
        if (n == max) {
            cdb_cfg_fail(r, key, "more than %d values", max);
            n = -1;
            break;
        }
        int bad = is_float ? cdb_parse_float_strict(t, (float *)out + n) : cdb_parse_int_strict(t, (int *)out + n);
        if (bad) {
            char text[96];
            cdb_cfg_fail(r, key, "'%s' is not %s", shown(t, text, sizeof(text)), is_float ? "a number" : "an integer");
            n = -1;
            break;
        }
        n++;
    }
    free(copy);
    if (n == 0) {
        cdb_cfg_fail(r, key, "empty list");
        return -1;
    }
    return n;
}

int cdb_cfg_int_list(cfg_reader *r, const char *key, int *out, int max) { return split_list(r, key, max, 0, out); }

int cdb_cfg_float_list(cfg_reader *r, const char *key, float *out, int max)
{
    return split_list(r, key, max, 1, out);
}

/* Darknet's keys and layer types that cdbnet refuses, and why (docs/cfg.md,
 * "From Darknet"): a cfg that uses one would otherwise train something else
 * than it says. */
static const struct {
    const char *key, *why;
} darknet_keys[] = {
    {"mosaic", "Darknet's mosaic augmentation (for its detectors)"},
    {"mixup", "Darknet's mixup augmentation"},
    {"cutmix", "Darknet's cutmix augmentation"},
    {"blur", "Darknet's blur augmentation"},
    {"random", "Darknet's random resizing of the network (for its detectors)"},
    {"adam", "Darknet's Adam (L2 decay in the gradient); use optimizer=adamw with beta1, beta2, eps"},
    {"B1", "Darknet's Adam; use optimizer=adamw with beta1"},
    {"B2", "Darknet's Adam; use optimizer=adamw with beta2"},
    {"clip", "Darknet's clipping of the input"},
    {"max_ratio", "Darknet's random aspect-ratio resizing"},
    {"min_ratio", "Darknet's random aspect-ratio resizing"},
    {"inputs", "Darknet's non-image input size; cdbnet's inputs are width x height x channels"},
    {"flipped", "Darknet's flipped kernels"},
    {"stopbackward", "Darknet's stop of the backward pass (for fine-tuning its detectors)"},
    {"xnor", "XNOR-Net binary weights and inputs"},
    {"binary", "binary weights"},
    {"stride_x", "a different horizontal stride"},
    {"stride_y", "a different vertical stride"},
};

const char *cdb_cfg_darknet_refused_section(const char *type)
{
    static const struct {
        const char *type, *why;
    } refused[] = {
        {"normalization", "local response normalisation"},
        {"lrn", "local response normalisation"},
        {"upsample", "upsampling, for detectors"},
        {"reorg", "space-to-depth reorganisation, for detectors"},
        {"local", "a locally connected layer"},
        {"yolo", "a detection layer"},
        {"region", "a detection layer"},
        {"detection", "a detection layer"},
        {"rnn", "a recurrent layer"},
        {"lstm", "a recurrent layer"},
        {"gru", "a recurrent layer"},
        {"crnn", "a recurrent layer"},
        {"conv_lstm", "a recurrent layer"},
        {"deconvolutional", "a transposed convolution"},
        {"sam", "spatial attention (AlexeyAB)"},
        {"gaussian_yolo", "a detection layer"},
        {"implicit", "implicit knowledge (YOLOR)"},
        {"empty", "a placeholder layer"},
        {"silence", "a placeholder layer"},
    };
    for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++)
        if (!strcmp(type, refused[k].type)) return refused[k].why;
    return NULL;
}

int cdb_cfg_check_unused(cfg_reader *r)
{
    if (r->failed) return -1;
    for (int i = 0; i < r->sec->n; i++) {
        if (!r->sec->kv[i].used) {
            const char *key = r->sec->kv[i].key;
            int known = 0;
            for (size_t k = 0; k < sizeof(darknet_keys) / sizeof(darknet_keys[0]); k++)
                if (!strcmp(key, darknet_keys[k].key)) {
                    /* switched off (key=0), the feature changes nothing */
                    if (!strcmp(r->sec->kv[i].value, "0")) {
                        r->sec->kv[i].used = 1;
                        known = 1;
                        break;
                    }
                    char where[16];
                    if (r->layer_index < 0)
                        snprintf(where, sizeof(where), "net");
                    else
                        snprintf(where, sizeof(where), "%d", r->layer_index);
                    cdb_cfg_fail(r, key,
                             "a Darknet key cdbnet does not implement (%s); see docs/cfg.md, From Darknet (%s=0, "
                             "or -set %s.%s=0, switches it off)",
                             darknet_keys[k].why, key, where, key);
                    return -1;
                }
            if (known) continue;
            cdb_cfg_fail(r, key, "unknown key for [%s] (see docs/cfg.md for the keys it takes)", r->sec->type);
            return -1;
        }
    }
    return 0;
}
