/* mpi.c — the runtime's MPI layer: `aec build SPEC --mpi` links it.
 *
 * Takes the trainer's model table and argv under `mpirun -n N PROG ...`;
 * initializes MPI, installs MPI's collectives as the runtime's communicator
 * (comm.c), runs aec_main on every rank and returns its status. Compiled
 * with mpicc into its own archive, libaecrt_mpi.a, so the runtime library
 * and every trainer built without --mpi need no MPI at all.
 *
 * train and eval run on every rank (aec_command.all_ranks); the other commands
 * run on rank 0 alone while the others wait for its status. A rank whose
 * failure the ranks did not agree on (say a usage error on one rank of an
 * MPMD run, before any collective) cannot tell the others, which may be
 * waiting in a collective: it ends the job with MPI_Abort, after its
 * message, so nothing hangs.
 *
 * Only the main thread calls MPI (MPI_THREAD_FUNNELED): the model's
 * parallel-for workers never do.
 */
#include <mpi.h>
#include <stdio.h>

#include "cli.h"

int aec_mpi_main(const aec_model *m, int argc, char **argv);

static MPI_Comm comm_of(void *ctx) {
    return *(MPI_Comm *)ctx;
}

static int mpi_allreduce_sum(void *ctx, void *buf, int64_t n, int dtype) {
    aec_comm *c = aec_comm_world();
    MPI_Datatype t = dtype == AEC_F64 ? MPI_DOUBLE : MPI_FLOAT;
    double t0 = MPI_Wtime();
    int st = MPI_SUCCESS;
    /* In chunks that fit MPI's int counts. */
    for (int64_t at = 0; at < n && st == MPI_SUCCESS; at += 1 << 30) {
        int count = (int)(n - at < (1 << 30) ? n - at : 1 << 30);
        st = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)at * aec_dtype_size(dtype), count, t,
                           MPI_SUM, comm_of(ctx));
    }
    c->allreduce_seconds += MPI_Wtime() - t0;
    c->allreduce_bytes += n * (int64_t)aec_dtype_size(dtype);
    c->allreduce_calls++;
    return st != MPI_SUCCESS;
}

static int mpi_max_loc(void *ctx, int value, int *max, int *at) {
    struct {
        int value, rank;
    } in = {value, aec_comm_world()->rank}, out;
    int st = MPI_Allreduce(&in, &out, 1, MPI_2INT, MPI_MAXLOC, comm_of(ctx));
    *max = out.value;
    *at = out.rank;
    return st != MPI_SUCCESS;
}

static int mpi_min_max_u64(void *ctx, uint64_t value, uint64_t *min, uint64_t *max) {
    int st = MPI_Allreduce(&value, min, 1, MPI_UINT64_T, MPI_MIN, comm_of(ctx));
    if (st == MPI_SUCCESS) st = MPI_Allreduce(&value, max, 1, MPI_UINT64_T, MPI_MAX, comm_of(ctx));
    return st != MPI_SUCCESS;
}

static int mpi_bcast(void *ctx, void *buf, size_t bytes, int root) {
    int st = MPI_SUCCESS;
    for (size_t at = 0; at < bytes && st == MPI_SUCCESS; at += 1u << 30) {
        int count = (int)(bytes - at < (1u << 30) ? bytes - at : 1u << 30);
        st = MPI_Bcast((char *)buf + at, count, MPI_BYTE, root, comm_of(ctx));
    }
    return st != MPI_SUCCESS;
}

int aec_mpi_main(const aec_model *m, int argc, char **argv) {
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "error: MPI_Init failed\n");
        return 1;
    }
    /* A communicator of our own: a library's collectives stay apart from
     * any the embedding program makes. Errors come back as codes. */
    MPI_Comm world;
    MPI_Comm_dup(MPI_COMM_WORLD, &world);
    MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN);
    aec_comm c = {.ctx = &world,
                  .allreduce_sum = mpi_allreduce_sum,
                  .max_loc = mpi_max_loc,
                  .min_max_u64 = mpi_min_max_u64,
                  .bcast = mpi_bcast};
    MPI_Comm_rank(world, &c.rank);
    MPI_Comm_size(world, &c.size);
    aec_comm_set(&c);

    const aec_command *cmd = argc > 1 ? aec_find_command(argv[1]) : NULL;
    int parallel = c.size == 1 || (cmd && cmd->all_ranks);
    int status = 0;
    if (parallel || c.rank == 0) status = aec_main(m, argc, argv);
    fflush(stdout);
    fflush(stderr);
    if (parallel && status && !c.failed && c.size > 1) MPI_Abort(world, status);
    if (!parallel) MPI_Bcast(&status, 1, MPI_INT, 0, world); /* rank 0's status is everyone's */
    aec_comm_set(NULL);
    MPI_Comm_free(&world);
    MPI_Finalize();
    return status;
}
