/* score.c — anomaly scores from an autoencoder compiled into the program.
 *
 * The model is specs/fmnist_dense.ae, trained on Fashion-MNIST and emitted
 * by `aec build --emit obj --embed-weights` as model.o and model.h: its
 * weights are constant data in the object, so this program needs no files,
 * no framework and no runtime — only libc and BLAS.
 *
 * Reads one input per line from stdin: FMNIST_DENSE_INPUT_SIZE numbers
 * (784: a 28x28 image, row by row), separated by spaces or commas. Writes
 * one line per input: its number, its anomaly score (the reconstruction
 * error, the mean squared difference between the input and the model's
 * reconstruction of it), and "anomaly" when the score is above --threshold.
 * An autoencoder reconstructs what looks like its training data well and
 * anything else badly, so a high score means "unlike what it was trained on".
 *
 * usage: score [--scale S] [--threshold T] < inputs
 *   --scale S       divide every value by S first (255 for raw pixel bytes)
 *   --threshold T   mark inputs scoring above T (default: mark none)
 * Exit status: 0, 1 for malformed input, 2 for a usage error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

enum { N = FMNIST_DENSE_INPUT_SIZE };

/* Parses up to N numbers from `line` into x; returns how many it found. */
static int parse_line(char *line, float *x, float scale) {
    int n = 0;
    for (char *tok = strtok(line, " \t,\r\n"); tok; tok = strtok(NULL, " \t,\r\n")) {
        char *end;
        float v = strtof(tok, &end);
        if (*end || n == N) return -1; /* not a number, or too many */
        x[n++] = v / scale;
    }
    return n;
}

int main(int argc, char **argv) {
    float scale = 1, threshold = INFINITY;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--scale") && i + 1 < argc)
            scale = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--threshold") && i + 1 < argc)
            threshold = strtof(argv[++i], NULL);
        else {
            fprintf(stderr, "usage: score [--scale S] [--threshold T] < inputs\n");
            return 2;
        }
    }

    /* One workspace for batch-1 calls, allocated once: the model itself
     * never allocates. */
    void *ws = malloc(fmnist_dense_workspace_size(1));
    float x[N];
    char *line = NULL;
    size_t cap = 0;
    long count = 0, flagged = 0;
    double sum = 0, max = 0;
    while (getline(&line, &cap, stdin) > 0) {
        if (strspn(line, " \t\r\n") == strlen(line)) continue; /* blank line */
        int n = parse_line(line, x, scale);
        if (n != N) {
            fprintf(stderr, "score: input %ld: expected %d numbers, got %s\n", count + 1, N,
                    n < 0 ? "something else" : "fewer");
            return 1;
        }
        /* eval with a batch of 1: the loss (mse) is this input's score. */
        float loss;
        int err = fmnist_dense_eval_embedded(x, NULL, 1, &loss, NULL, ws);
        if (err) {
            fprintf(stderr, "score: %s\n", aec_strerror(err));
            return 1;
        }
        float score = loss;
        count++;
        sum += score;
        if (score > max) max = score;
        int anomaly = score > threshold;
        flagged += anomaly;
        printf("%ld %.6f%s\n", count, score, anomaly ? " anomaly" : "");
    }
    fflush(stdout);
    if (count)
        fprintf(stderr, "score: %ld inputs, mean score %.6f, max %.6f, %ld above the threshold\n",
                count, sum / (double)count, max, flagged);
    free(line);
    free(ws);
    return 0;
}
