#!/usr/bin/env bash
# End to end for `make install`: a copy of the source tree is built and
# installed into a temporary prefix, then the copy is deleted; the installed
# aec must still build and run trainers (it finds its runtime beside itself),
# an emitted object must link with `pkg-config --cflags --libs aec` and give
# the trainer's codes, --version must say the version, LLVM and GEMM backend,
# the man pages must render without warnings, and `make uninstall` (with
# DESTDIR) must remove every file it installed.
. "$(dirname "$0")/lib.sh"
ROOT=$(pwd)
DATA=/usr/share/datasets/fashion-mnist
CC=${CC:-cc}

# A copy of the tree, built and installed; then the copy is gone.
mkdir "$T/src"
tar -C "$ROOT" --exclude=./.git --exclude='./build*' -cf - . | tar -C "$T/src" -xf -
P="$T/prefix"
if ! nice make -s -C "$T/src" -j2 B="$T/src/build" install PREFIX="$P" > "$T/make.log" 2>&1; then
    cat "$T/make.log"; echo "not ok - make install"; exit 1
fi
rm -rf "$T/src"
expect "the source tree and its build are gone" '[ ! -e "$T/src" ]'
AEC="$P/bin/aec"
for f in bin/aec lib/libaecrt.a include/aec/aec.h lib/pkgconfig/aec.pc share/man/man1/aec.1 \
         share/man/man5/aec.5 share/man/man1/aec-trainer.1 share/doc/aec/README.md \
         share/doc/aec/language.md share/bash-completion/completions/aec \
         share/vim/vimfiles/syntax/ae.vim share/vim/vimfiles/ftdetect/ae.vim \
         share/aec/vscode/package.json share/aec/vscode/syntaxes/ae.tmLanguage.json; do
    expect "installs $f" '[ -f "$P/$f" ]'
done

# --version: the version, the LLVM version and the GEMM backend, as built.
"$AEC" --version > "$T/v" 2>&1
expect "aec --version names the version" 'grep -q "^aec [0-9][0-9.]*" "$T/v"'
expect "aec --version names the LLVM it was built with" \
    'grep -qx "LLVM $(llvm-config --version 2>/dev/null || echo none)" "$T/v"'
expect "aec --version names the GEMM backend" 'grep -Eq "^GEMM (aec|blas)" "$T/v"'

# The installed aec builds a trainer, which trains and encodes.
cd "$T"
if ! "$AEC" build "$ROOT/specs/linear.ae" -o "$T/lin" 2> "$T/build.err"; then
    cat "$T/build.err"; fail "the installed aec builds a trainer without the source tree"
else
    ok "the installed aec builds a trainer without the source tree"
fi
"$T/lin" --version > "$T/pv" 2>&1
expect "PROG --version names the aec version, LLVM and GEMM backend" \
    'grep -q "aec [0-9]" "$T/pv" && grep -q "^LLVM " "$T/pv" && grep -Eq "^GEMM (aec|blas)" "$T/pv"'
"$T/lin" train --data "$DATA/train-images-idx3-ubyte.gz" --limit 1000 --epochs 2 --quiet \
    --out "$T/lin.safetensors"
expect "the trainer trains" '[ -s "$T/lin.safetensors" ]'
/usr/bin/python3 -c "
import numpy as np
x = np.array([[((i * 7 + s * 3) % 11) / 11.0 for i in range(784)] for s in range(2)], np.float32)
np.save('$T/x.npy', x)"
"$T/lin" encode --data "$T/x.npy" --weights "$T/lin.safetensors" -o "$T/codes.npy" --quiet

# An emitted object with the weights embedded, linked with pkg-config.
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
"$AEC" build "$ROOT/specs/linear.ae" --emit obj --embed-weights "$T/lin.safetensors" -o "$T/lin.o"
cat > "$T/app.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "lin.h"
int main(void) {
    static float x[2][LINEAR_INPUT_SIZE], code[2][LINEAR_CODE_SIZE];
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < LINEAR_INPUT_SIZE; i++) x[s][i] = (float)((i * 7 + s * 3) % 11) / 11.0f;
    void *ws = malloc(linear_workspace_size(2));
    int err = linear_encode_embedded(&x[0][0], &code[0][0], 2, ws);
    if (err) { fprintf(stderr, "encode: %s\n", aec_strerror(err)); return 1; }
    for (int s = 0; s < 2; s++)
        for (int j = 0; j < LINEAR_CODE_SIZE; j++) printf("%.9g\n", code[s][j]);
    free(ws);
    return 0;
}
C
flags=$(pkg-config --cflags --libs aec)
expect "pkg-config --cflags points into the prefix" '[[ "$flags" == *"-I$P/include/aec"* ]]'
if $CC -I"$T" "$T/app.c" "$T/lin.o" $flags -o "$T/app" 2> "$T/cc.err"; then
    ok "an emitted object links with \$(pkg-config --cflags --libs aec)"
    "$T/app" > "$T/app.out"
    expect "the linked program gives the trainer's codes (1e-5)" '/usr/bin/python3 -c "
import numpy as np, sys
a = np.loadtxt(\"$T/app.out\").reshape(2, -1); b = np.load(\"$T/codes.npy\")
sys.exit(0 if a.shape == b.shape and np.abs(a - b).max() <= 1e-5 * (1 + np.abs(b).max()) else 1)"'
else
    cat "$T/cc.err"; fail "an emitted object links with \$(pkg-config --cflags --libs aec)"
fi
expect "the object's header says how to link it with pkg-config" \
    'grep -q "pkg-config --cflags --libs aec" "$T/lin.h"'

# Man pages render without warnings (groff -ww), and man finds them.
for page in $(cd "$P/share/man" && ls man*/*); do
    groff -k -Tutf8 -ww -mandoc -z "$P/share/man/$page" > "$T/groff.err" 2>&1
    expect "man page $page renders without warnings" '[ ! -s "$T/groff.err" ]'
done
expect "man -M finds aec(1)" 'MANPATH= man -M "$P/share/man" -w 1 aec | grep -q "man1/aec.1"'
expect "man -M finds aec(5)" 'MANPATH= man -M "$P/share/man" -w 5 aec | grep -q "man5/aec.5"'
# The man pages say what the programs' own tables say: every option of
# `aec --help` is in aec(1), every command and option of the trainer's
# --help is in aec-trainer(1) (generated from the same table).
MANWIDTH=200 man -l "$P/share/man/man1/aec.1" 2>/dev/null > "$T/aec.1.txt"
MANWIDTH=200 man -l "$P/share/man/man1/aec-trainer.1" 2>/dev/null > "$T/trainer.1.txt"
missing=""
for o in $("$AEC" --help | grep -o -- '^  -[-a-zA-Z]*' | sed 's/^ *//; s/^-O$/-O/'); do
    grep -q -- "$o" "$T/aec.1.txt" || missing="$missing $o"
done
expect "aec(1) documents every option of aec --help${missing:+ (missing:$missing)}" '[ -z "$missing" ]'
missing=""
for c in $("$T/lin" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}'); do
    grep -Eq "^ *$c( |\$)" "$T/trainer.1.txt" || missing="$missing $c"
    for o in $("$T/lin" "$c" --help | grep -o -- '^  -[-a-z]*' | sed 's/^ *//'); do
        grep -q -- "$o" "$T/trainer.1.txt" || missing="$missing $c:$o"
    done
done
expect "aec-trainer(1) has every command and option of PROG --help${missing:+ (missing:$missing)}" \
    '[ -z "$missing" ]'

# Bash completion, installed where bash-completion looks: aec's commands,
# option words, and a trainer's commands and options.
cat > "$T/comp.sh" <<'SH'
source "$1"
comp() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); "$F"; echo "${COMPREPLY[*]}"; }
F=_aec; comp aec ""; comp aec build x.ae --emit ""; comp aec check --dump = ""
comp aec run x.ae -- recon
F=_aec_trainer; comp fm enc; comp fm encode --w
SH
bash "$T/comp.sh" "$P/share/bash-completion/completions/aec" > "$T/comp.out" 2>&1
expect "bash completes aec's commands" 'sed -n 1p "$T/comp.out" | grep -q "check build run"'
expect "bash completes --emit's words" '[ "$(sed -n 2p "$T/comp.out")" = "obj asm llvm" ]'
expect "bash completes --dump=STAGE" 'sed -n 3p "$T/comp.out" | grep -q "tokens ast shapes"'
expect "bash completes the trainer after aec run SPEC --" '[ "$(sed -n 4p "$T/comp.out")" = reconstruct ]'
expect "bash completes a trainer's commands" '[ "$(sed -n 5p "$T/comp.out")" = encode ]'
expect "bash completes a trainer command's options" '[ "$(sed -n 6p "$T/comp.out")" = --weights ]'

# DESTDIR staging, then uninstall removes every file.
cd "$ROOT"
S="$T/stage"
make -s B="$B" install PREFIX=/usr/local DESTDIR="$S" > "$T/stage.log" 2>&1 || cat "$T/stage.log"
expect "DESTDIR stages under /usr/local" '[ -x "$S/usr/local/bin/aec" ] && [ -f "$S/usr/local/lib/pkgconfig/aec.pc" ]'
expect "the staged aec.pc names the real prefix" 'grep -qx "prefix=/usr/local" "$S/usr/local/lib/pkgconfig/aec.pc"'
make -s B="$B" uninstall PREFIX=/usr/local DESTDIR="$S" > /dev/null 2>&1
left=$(find "$S" -type f | sed "s|^$S||")
expect "make uninstall removes every installed file" '[ -z "$left" ] || { echo "left: $left"; false; }'

summary "install"
