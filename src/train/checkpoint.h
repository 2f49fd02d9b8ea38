/* A trainer's checkpoints (the functions of include/cdbnet.h on them are
 * here too: cdb_state_save/load, cdb_checkpoint_save/load_state). */
#ifndef CDB_CHECKPOINT_H
#define CDB_CHECKPOINT_H

#include "trainer.h"

/* Start from a weights file (`cdbnet train -weights FILE`): the weights,
 * the counters their images-seen count says (0 with `clear`), and the
 * optimizer state saved beside them (cdb_checkpoint_load_state), saying
 * which unless `quiet`; a warning when the state is missing. 0, or -1 with
 * the error recorded. */
int cdb_trainer_resume(cdb_trainer *tr, const char *weights, int clear, int quiet);

#endif
