#include "dist.h"

#include <stdlib.h>
#include <string.h>

#include "dropback.h"
#include "network.h"
#include "utils.h"
#ifdef GPU
#include "cuda_utils.h"
#endif

#ifdef CDB_MPI
#include <mpi.h>

static int mpi_on, rank_, size_ = 1;

#if defined(CDB_NCCL) && defined(GPU)
#include <cuda_runtime_api.h>
#include <nccl.h>

/* NCCL=1: GPU ranks sum on their devices. The communicator is made at the
 * first sum: rank 0's unique id goes to every rank over MPI. */
static ncclComm_t nccl_comm;
static int nccl_state; /* 0 not yet, 1 ready, -1 failed */
static float *nccl_buffer;
static size_t nccl_floats;
#endif

int cdb_dist_available(void) { return 1; }

int cdb_dist_init(int *argc, char ***argv)
{
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        cdb_set_error("MPI_Init failed");
        return -1;
    }
    mpi_on = 1;
    /* errors return (and are reported by name) rather than abort silently */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    return 0;
}

void cdb_dist_finalize(void)
{
#if defined(CDB_NCCL) && defined(GPU)
    if (nccl_state == 1) ncclCommDestroy(nccl_comm);
    if (nccl_buffer) cudaFree(nccl_buffer);
    nccl_state = 0;
    nccl_buffer = NULL;
#endif
    if (mpi_on) MPI_Finalize();
    mpi_on = 0;
}

int cdb_dist_rank(void) { return rank_; }
int cdb_dist_size(void) { return size_; }

static int mpi_failed(int rc, const char *what)
{
    if (rc == MPI_SUCCESS) return 0;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    cdb_set_error("%s failed on rank %d of %d: %s (another rank may have stopped)", what, rank_, size_, text);
    return -1;
}

int cdb_dist_sum_doubles(double *v, int n)
{
    if (size_ == 1) return 0;
    int rc = MPI_Reduce(rank_ == 0 ? MPI_IN_PLACE : v, v, n, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    if (mpi_failed(rc, "MPI_Reduce")) return -1;
    return mpi_failed(MPI_Bcast(v, n, MPI_DOUBLE, 0, MPI_COMM_WORLD), "MPI_Bcast");
}

/* The buckets of one step: the packed buffer holds the layers' gradients
 * from the last layer to the first. */
static struct {
    MPI_Request *requests;
    int n_requests, cap_requests;
    size_t fill, posted; /* floats packed, floats whose reduction is posted */
    int next_layer;      /* the layer whose backward comes next */
    int failed;
} bucket;

static int ensure_buffer(cdb_dist_state *ds, size_t total)
{
    if (ds->buffer && ds->size >= total) return 0;
    free(ds->buffer);
    ds->buffer = cdb_xmalloc(total * sizeof(float));
    ds->size = ds->buffer ? total : 0;
    return ds->buffer ? 0 : -1;
}

int cdb_dist_begin_gradients(cdb_network *net, cdb_dist_state *ds)
{
    size_t total = 0;
    for (int i = 0; i < net->nparams; i++) total += net->params[i]->size;
    bucket.fill = bucket.posted = 0;
    bucket.n_requests = 0;
    bucket.next_layer = net->n - 1;
    bucket.failed = 0;
    if (bucket.cap_requests < net->n + 1) {
        MPI_Request *r = realloc(bucket.requests, sizeof(MPI_Request) * (size_t)(net->n + 1));
        if (!r) {
            bucket.failed = 1;
            cdb_set_error("out of memory for the gradient buckets");
            return -1;
        }
        bucket.requests = r;
        bucket.cap_requests = net->n + 1;
    }
    if (ensure_buffer(ds, total)) {
        bucket.failed = 1;
        return -1;
    }
    return 0;
}

static void post_bucket(cdb_dist_state *ds, size_t end)
{
    if (end <= bucket.posted) return;
    float *at = ds->buffer + bucket.posted;
    int n = (int)(end - bucket.posted);
    MPI_Request *r = &bucket.requests[bucket.n_requests++];
    int rc = MPI_Ireduce(rank_ == 0 ? MPI_IN_PLACE : at, at, n, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD, r);
    if (rc != MPI_SUCCESS) {
        mpi_failed(rc, "MPI_Ireduce of the gradients");
        bucket.failed = 1;
        *r = MPI_REQUEST_NULL;
    }
    bucket.posted = end;
}

/* A tensor's gradient into the buffer (unpack: back out of it), all of it
 * or, when ChannelDropBack selected the tensor, only its kept channels: the
 * dropped ones are zeroed after the sum on every rank (the same masks), so
 * their sum is never used; unpacking zeroes them at once. Returns the
 * floats moved. */
static size_t pack_tensor(const dropback_config *db, cdb_param *p, float *buf, int unpack, int whole)
{
    size_t run = 0;
    int period = 1;
    const uint8_t *dropped = whole ? NULL : cdb_dropback_dropped_runs(db, p, &run, &period);
    if (!dropped) {
        if (unpack)
            memcpy(p->grad, buf, p->size * sizeof(float));
        else
            memcpy(buf, p->grad, p->size * sizeof(float));
        return p->size;
    }
    size_t n = 0, runs = p->size / run;
    for (size_t r = 0; r < runs; r++) {
        float *g = p->grad + r * run;
        if (dropped[r % (size_t)period]) {
            /* the same zero on every rank (a rank's own value there could
             * make only it see a non-finite gradient) */
            if (unpack) memset(g, 0, run * sizeof(float));
            continue;
        }
        if (unpack)
            memcpy(g, buf + n, run * sizeof(float));
        else
            memcpy(buf + n, g, run * sizeof(float));
        n += run;
    }
    return n;
}

void cdb_dist_layer_done(cdb_network *net, cdb_dist_state *ds, int layer)
{
    if (layer != bucket.next_layer || !ds->buffer) return;
    cdb_layer *l = &net->layers[layer];
    for (int k = 0; k < l->nparams; k++) bucket.fill += pack_tensor(&net->dropback, &l->params[k], ds->buffer + bucket.fill, 0, ds->whole);
    bucket.next_layer = layer - 1;
    if (bucket.fill - bucket.posted >= DIST_BUCKET_FLOATS || layer == 0) post_bucket(ds, bucket.fill);
    /* let MPI move the posted buckets along between layers */
    int done;
    if (bucket.n_requests) MPI_Testall(bucket.n_requests, bucket.requests, &done, MPI_STATUSES_IGNORE);
}

int cdb_dist_finish_gradients(cdb_network *net, cdb_dist_state *ds, int apply)
{
    if (!ds->buffer) return -1;
    /* the layers a failed pass did not reach: the same buckets as the others post */
    while (bucket.next_layer >= 0) cdb_dist_layer_done(net, ds, bucket.next_layer);
    int rc = MPI_Waitall(bucket.n_requests, bucket.requests, MPI_STATUSES_IGNORE);
    if (mpi_failed(rc, "MPI_Waitall of the gradient buckets") || bucket.failed) return -1;
    size_t total = bucket.fill;
    for (size_t off = 0; off < total; off += (size_t)1 << 30) {
        int n = (int)(total - off < ((size_t)1 << 30) ? total - off : ((size_t)1 << 30));
        if (mpi_failed(MPI_Bcast(ds->buffer + off, n, MPI_FLOAT, 0, MPI_COMM_WORLD), "MPI_Bcast of the gradients"))
            return -1;
    }
    if (!apply) return 0;
    size_t at = 0;
    for (int i = net->n - 1; i >= 0; i--) {
        cdb_layer *l = &net->layers[i];
        for (int k = 0; k < l->nparams; k++) at += pack_tensor(&net->dropback, &l->params[k], ds->buffer + at, 1, ds->whole);
    }
    ds->floats_sent = total;
    return 0;
}

#if defined(CDB_NCCL) && defined(GPU)

static int nccl_failed(ncclResult_t rc, const char *what)
{
    if (rc == ncclSuccess) return 0;
    cdb_set_error("%s failed on rank %d of %d: %s", what, rank_, size_, ncclGetErrorString(rc));
    return -1;
}

static int nccl_start(void)
{
    ncclUniqueId id;
    if (rank_ == 0 && nccl_failed(ncclGetUniqueId(&id), "ncclGetUniqueId")) return -1;
    if (mpi_failed(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast of the NCCL id")) return -1;
    return nccl_failed(ncclCommInitRank(&nccl_comm, size_, id, rank_), "ncclCommInitRank");
}

/* The same packed reduce-then-broadcast as on the host, on the device. */
static int nccl_sum(cdb_network *net, size_t total)
{
    if (nccl_state == 0) nccl_state = nccl_start() ? -1 : 1;
    if (nccl_state < 0) return -1;
    if (nccl_floats < total) {
        if (nccl_buffer) cudaFree(nccl_buffer);
        nccl_buffer = NULL;
        nccl_floats = 0;
        if (cudaMalloc((void **)&nccl_buffer, total * sizeof(float)) != cudaSuccess) {
            cdb_set_error("out of GPU memory for the %zu gradients NCCL sums", total);
            return -1;
        }
        nccl_floats = total;
    }
    size_t at = 0;
    for (int i = 0; i < net->nparams; i++) {
        const cdb_param *p = net->params[i];
        cudaMemcpyAsync(nccl_buffer + at, GPU_F(net, p->grad, p->size), p->size * sizeof(float),
                        cudaMemcpyDeviceToDevice, 0);
        at += p->size;
    }
    if (nccl_failed(ncclReduce(nccl_buffer, nccl_buffer, total, ncclFloat, ncclSum, 0, nccl_comm, 0), "ncclReduce") ||
        nccl_failed(ncclBroadcast(nccl_buffer, nccl_buffer, total, ncclFloat, 0, nccl_comm, 0), "ncclBroadcast"))
        return -1;
    at = 0;
    for (int i = 0; i < net->nparams; i++) {
        const cdb_param *p = net->params[i];
        cudaMemcpyAsync(GPU_F(net, p->grad, p->size), nccl_buffer + at, p->size * sizeof(float),
                        cudaMemcpyDeviceToDevice, 0);
        at += p->size;
    }
    if (cudaStreamSynchronize(0) != cudaSuccess) {
        cdb_set_error("a CUDA error in the NCCL gradient sum on rank %d", rank_);
        return -1;
    }
    return 0;
}
#endif

int cdb_dist_sum_gradients(cdb_network *net, cdb_dist_state *ds)
{
    if (size_ == 1) return 0;
#if defined(CDB_NCCL) && defined(GPU)
    if (net->gpu) {
        size_t floats = 0;
        for (int i = 0; i < net->nparams; i++) floats += net->params[i]->size;
        return nccl_sum(net, floats);
    }
#endif
    size_t total = 0;
    for (int i = 0; i < net->nparams; i++) total += net->params[i]->size;
    if (ensure_buffer(ds, total)) return -1;
    float *buf = ds->buffer;
    size_t at = 0;
    for (int i = 0; i < net->nparams; i++) {
#ifdef GPU
        /* without NCCL the sum goes through the host */
        if (net->gpu) cdb_gpu_pull(net, net->params[i]->grad, net->params[i]->size * sizeof(float));
#endif
        memcpy(buf + at, net->params[i]->grad, net->params[i]->size * sizeof(float));
        at += net->params[i]->size;
    }
    /* in pieces of at most 2^30 floats: MPI counts are ints */
    for (size_t off = 0; off < total; off += (size_t)1 << 30) {
        int n = (int)(total - off < ((size_t)1 << 30) ? total - off : ((size_t)1 << 30));
        int rc = MPI_Reduce(rank_ == 0 ? MPI_IN_PLACE : buf + off, buf + off, n, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
        if (mpi_failed(rc, "MPI_Reduce of the gradients")) return -1;
        if (mpi_failed(MPI_Bcast(buf + off, n, MPI_FLOAT, 0, MPI_COMM_WORLD), "MPI_Bcast of the gradients")) return -1;
    }
    at = 0;
    for (int i = 0; i < net->nparams; i++) {
        memcpy(net->params[i]->grad, buf + at, net->params[i]->size * sizeof(float));
#ifdef GPU
        if (net->gpu) cdb_gpu_push(net, net->params[i]->grad, net->params[i]->size * sizeof(float));
#endif
        at += net->params[i]->size;
    }
    return 0;
}

void cdb_dist_barrier(void)
{
    if (size_ > 1) MPI_Barrier(MPI_COMM_WORLD);
}

int cdb_dist_broadcast(void *buf, size_t bytes)
{
    if (size_ == 1) return 0;
    for (size_t off = 0; off < bytes; off += (size_t)1 << 30) {
        int n = (int)(bytes - off < ((size_t)1 << 30) ? bytes - off : ((size_t)1 << 30));
        if (mpi_failed(MPI_Bcast((char *)buf + off, n, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast")) return -1;
    }
    return 0;
}

void cdb_dist_abort(int code)
{
    if (mpi_on && size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

#else

int cdb_dist_available(void) { return 0; }
int cdb_dist_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
void cdb_dist_finalize(void) {}
int cdb_dist_rank(void) { return 0; }
int cdb_dist_size(void) { return 1; }
int cdb_dist_sum_doubles(double *v, int n)
{
    (void)v;
    (void)n;
    return 0;
}
int cdb_dist_sum_gradients(cdb_network *net, cdb_dist_state *ds)
{
    (void)net;
    (void)ds;
    return 0;
}
void cdb_dist_barrier(void) {}
int cdb_dist_begin_gradients(cdb_network *net, cdb_dist_state *ds)
{
    (void)net;
    (void)ds;
    return 0;
}
void cdb_dist_layer_done(cdb_network *net, cdb_dist_state *ds, int layer)
{
    (void)net;
    (void)ds;
    (void)layer;
}
int cdb_dist_finish_gradients(cdb_network *net, cdb_dist_state *ds, int apply)
{
    (void)net;
    (void)ds;
    (void)apply;
    return 0;
}
int cdb_dist_broadcast(void *buf, size_t bytes)
{
    (void)buf;
    (void)bytes;
    return 0;
}
void cdb_dist_abort(int code) { (void)code; }

#endif
