/* commands.c — the trainer's options and commands: two tables, nothing else.
 *
 * `aec_options` is every option the trainer knows (name, alias, kind, the
 * field of aec_args it sets, its help); `aec_commands` is every command
 * (name, usage, summary, the options it takes, its handler in cmd_<name>.c).
 * cli.c parses and prints help from them; completion and man pages can be
 * generated from them. To add a command: docs/internals.md.
 */
#include "cli.h"

#define FIELD(f) offsetof(aec_args, f), sizeof(((aec_args *)0)->f)
#define HAS(f) (ptrdiff_t) offsetof(aec_args, f)

const aec_option aec_options[AEC_N_OPTIONS] = {
    [AEC_OPT_DATA] = {"--data", NULL, AEC_OPT_STR, FIELD(data), -1, "FILE",
                      "data: IDX (.gz), .npy or CSV"},
    [AEC_OPT_VAL] = {"--val", NULL, AEC_OPT_STR, FIELD(val), -1, "FILE",
                     "validation data (instead of the spec's `validation F` hold-out)"},
    [AEC_OPT_EPOCHS] = {"--epochs", NULL, AEC_OPT_POSITIVE, FIELD(epochs), -1, "N",
                        "total epochs (a resumed run continues up to N); default: the spec's"},
    [AEC_OPT_BATCH] = {"--batch", NULL, AEC_OPT_POSITIVE, FIELD(batch), -1, "N",
                       "batch size; default: the spec's"},
    [AEC_OPT_SEED] = {"--seed", NULL, AEC_OPT_U64, FIELD(seed), HAS(has_seed), "N",
                      "random seed; default: the spec's"},
    [AEC_OPT_EARLY_STOP] = {"--early-stop", NULL, AEC_OPT_COUNT, FIELD(early_stop),
                            HAS(has_early_stop), "N",
                            "stop after N epochs without validation improvement (0: off)"},
    [AEC_OPT_MIN_DELTA] = {"--min-delta", NULL, AEC_OPT_REAL, FIELD(min_delta), HAS(has_min_delta),
                           "D", "an improvement must lower the validation loss by more than D"},
    [AEC_OPT_PRETRAIN_EPOCHS] = {"--pretrain-epochs", NULL, AEC_OPT_COUNT, FIELD(pretrain_epochs),
                                 HAS(has_pretrain_epochs), "N",
                                 "epochs per layer-wise pretraining stage (0: none); "
                                 "default: the spec's"},
    [AEC_OPT_OUT] = {"--out", "-o", AEC_OPT_STR, FIELD(out), -1, "FILE", "output file"},
    [AEC_OPT_RESUME] = {"--resume", NULL, AEC_OPT_STR, FIELD(resume), -1, "CKPT",
                        "continue the run that wrote this checkpoint, exactly"},
    [AEC_OPT_WEIGHTS] = {"--weights", "-w", AEC_OPT_STR, FIELD(weights), -1, "FILE",
                         "trained weights (.safetensors)"},
    [AEC_OPT_CODES] = {"--codes", NULL, AEC_OPT_STR, FIELD(codes), -1, "FILE",
                       "codes to decode (.npy, CSV, IDX)"},
    [AEC_OPT_PNG] = {"--png", NULL, AEC_OPT_STR, FIELD(png), -1, "FILE",
                     "a PNG grid: originals, and their reconstructions below"},
    [AEC_OPT_N] = {"--n", "-n", AEC_OPT_POSITIVE, FIELD(n), -1, "N",
                   "images in the PNG grid (default 10)"},
    [AEC_OPT_FROM] = {"--from", NULL, AEC_OPT_COUNT, FIELD(from), -1, "I",
                      "interpolate from sample I (default 0)"},
    [AEC_OPT_TO] = {"--to", NULL, AEC_OPT_COUNT, FIELD(to), HAS(has_to), "J",
                    "interpolate to sample J (default 1)"},
    [AEC_OPT_STEPS] = {"--steps", NULL, AEC_OPT_POSITIVE, FIELD(steps), -1, "K",
                       "points on the line, both ends included (default 10)"},
    [AEC_OPT_COLS] = {"--cols", NULL, AEC_OPT_POSITIVE, FIELD(cols), -1, "N",
                      "images per PNG row (default 10)"},
    [AEC_OPT_ROWS] = {"--rows", NULL, AEC_OPT_POSITIVE, FIELD(rows), -1, "N",
                      "pairs of PNG rows (sets --n to rows x cols)"},
    [AEC_OPT_SCALE] = {"--scale", NULL, AEC_OPT_POSITIVE, FIELD(scale), -1, "N",
                       "PNG pixels per value (default: 4 up to 16 px, 2 up to 64 px)"},
    [AEC_OPT_LIMIT] = {"--limit", NULL, AEC_OPT_COUNT, FIELD(limit), -1, "N",
                       "use only the first N samples"},
    [AEC_OPT_JSON] = {"--json", NULL, AEC_OPT_FLAG, FIELD(json), -1, NULL,
                      "machine-readable results on stdout"},
    [AEC_OPT_QUIET] = {"--quiet", "-q", AEC_OPT_FLAG, FIELD(quiet), -1, NULL,
                       "no progress or informational output"},
    [AEC_OPT_HELP] = {"--help", "-h", AEC_OPT_FLAG, FIELD(help), -1, NULL, "show this help"},
};

/* A command's option list: OPTIONS(O(DATA), O(HELP)). */
#define O(x) &aec_options[AEC_OPT_##x]
#define OPTIONS(...) ((const aec_option *const[]){__VA_ARGS__, NULL})

const aec_command aec_commands[] = {
    {"train", "--data X [options]", "Train the model; a checkpoint is written after every epoch.",
     OPTIONS(O(DATA), O(VAL), O(EPOCHS), O(BATCH), O(SEED), O(EARLY_STOP), O(MIN_DELTA),
             O(PRETRAIN_EPOCHS), O(OUT), O(RESUME), O(LIMIT), O(JSON), O(QUIET), O(HELP)),
     aec_cmd_train},
    {"eval", "--data X --weights W [options]",
     "The model's loss, the MSE and the PSNR (for data in [0, 1]) on a data set.",
     OPTIONS(O(DATA), O(WEIGHTS), O(LIMIT), O(JSON), O(QUIET), O(HELP)), aec_cmd_eval},
    {"encode", "--data X --weights W -o codes.npy",
     "Write the code of every sample (the mean for a variational model).",
     OPTIONS(O(DATA), O(OUT), O(WEIGHTS), O(LIMIT), O(QUIET), O(HELP)), aec_cmd_encode},
    {"decode", "--codes Z --weights W -o out.npy", "Write the decoding of every code.",
     OPTIONS(O(OUT), O(WEIGHTS), O(CODES), O(LIMIT), O(QUIET), O(HELP)), aec_cmd_decode},
    {"reconstruct", "--data X --weights W [-o out.npy] [--png grid.png]",
     "Reconstruct every sample; optionally draw the first ones as a PNG grid.",
     OPTIONS(O(DATA), O(OUT), O(WEIGHTS), O(PNG), O(N), O(COLS), O(ROWS), O(SCALE), O(LIMIT),
             O(JSON), O(QUIET), O(HELP)),
     aec_cmd_reconstruct},
    {"sample", "-n N --weights W [-o out.npy] [--png grid.png] [--seed S]",
     "Decode N codes drawn from N(0, I): new samples of a variational model.",
     OPTIONS(O(SEED), O(OUT), O(WEIGHTS), O(PNG), O(N), O(COLS), O(SCALE), O(QUIET), O(HELP)),
     aec_cmd_sample},
    {"interpolate", "--data X --weights W [--from I] [--to J] [--steps K] [-o out.npy] [--png F]",
     "Decode the straight line between the codes of samples I and J of X.",
     OPTIONS(O(DATA), O(OUT), O(WEIGHTS), O(PNG), O(FROM), O(TO), O(STEPS), O(SCALE), O(QUIET),
             O(HELP)),
     aec_cmd_interpolate},
    {"summary", "", "The model: layers, sizes, parameters, training settings.", OPTIONS(O(HELP)),
     aec_cmd_summary},
};

const size_t aec_n_commands = sizeof aec_commands / sizeof aec_commands[0];
