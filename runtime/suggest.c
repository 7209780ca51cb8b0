/* suggest.c — edit distance, for "did you mean".
 *
 * The one copy of it: the trainer's command line suggests commands and
 * options with it, and the compiler (which links the runtime) suggests
 * keywords with it. Each caller decides what is close enough.
 */
#include <ctype.h>
#include <string.h>

#include "rt.h"

/* Letter k of s as compared: folded to lower case with AEC_EDIT_NOCASE. */
static int letter(const char *s, int k, int flags) {
    return flags & AEC_EDIT_NOCASE ? tolower((unsigned char)s[k]) : (unsigned char)s[k];
}

int aec_edit_distance(const char *a, const char *b, int flags) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return AEC_EDIT_FAR;
    int d[64][64];
    for (int i = 0; i <= n; i++)
        d[i][0] = i;
    for (int j = 0; j <= m; j++)
        d[0][j] = j;
    for (int i = 1; i <= n; i++) {
        for (int j = 1; j <= m; j++) {
            int ca = letter(a, i - 1, flags), cb = letter(b, j - 1, flags);
            int best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if ((flags & AEC_EDIT_SWAP) && i > 1 && j > 1 && ca == letter(b, j - 2, flags) &&
                letter(a, i - 2, flags) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}
