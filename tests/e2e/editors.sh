#!/usr/bin/env bash
# The editor files generated from the checker's tables (aecgen): the
# TextMate grammar is valid JSON whose patterns compile, and it — and the
# Vim syntax — has every keyword docs/language.md documents; Vim loads the
# syntax and ftdetect files without errors and gives .ae words their groups.
. "$(dirname "$0")/lib.sh"
[ -n "${KEEP:-}" ] && trap - EXIT && echo "keeping $T"
G="$B/editors/vscode/syntaxes/ae.tmLanguage.json"
V="$B/editors/vim/syntax/ae.vim"

# The words of docs/language.md: in its tables' first column (the statement,
# layer, setting and term forms) and in its .ae examples, every lowercase
# word but model names; upper-case words are placeholders (N, ACT, SHAPE).
/usr/bin/python3 - "$G" "$V" > "$T/py.out" 2>&1 <<'PY'
import json, re, sys
grammar = json.load(open(sys.argv[1]))           # fails on invalid JSON
vim = open(sys.argv[2]).read()
print("ok - the TextMate grammar is valid JSON")
repo = grammar["repository"]
for name, rule in repo.items():
    re.compile(rule["match"].replace("\\b", r"\b"))
print("ok - every grammar pattern compiles as a regular expression")
words_in = lambda pat: set(re.findall(r"[a-z_][a-z0-9_]*", pat))
grammar_words = set()
for rule in repo.values():
    m = re.match(r"\\b\((.*?)\)\\b", rule["match"])
    if m: grammar_words |= set(m.group(1).split("|"))
grammar_words.add("model")
vim_words = set()
for line in vim.splitlines():
    if line.startswith("syn keyword"): vim_words |= set(line.split()[3:])
    m = re.match(r"syn match \w+ '\\<(\w+)", line)
    if m: vim_words.add(m.group(1))
doc = open("docs/language.md").read()
ident = re.compile(r"(?<![\w.\-])[a-z_][a-z0-9_]*(?![\w.(])")
wanted = set()
for line in doc.splitlines():
    if not line.startswith("|") or set(line) <= set("|-: "): continue
    first = re.split(r"(?<!\\)\|", line)[1]
    for span in re.findall(r"`([^`]*)`", first):
        wanted |= set(ident.findall(span.replace("\\|", " ")))
blocks = re.findall(r"```[^\n]*\n(.*?)```", doc, re.S)
for b in blocks:
    lines = [l.split("#")[0] for l in b.splitlines()]
    first = next((l.split() for l in lines if l.split()), [""])[0]
    if first not in grammar_words: continue      # not .ae text (shell, errors)
    for l in lines:
        l = re.sub(r"\bmodel\s+\w+", "model", l)
        wanted |= set(ident.findall(l))
wanted -= {"x"}                                   # only ever inside shapes
print("# %d words from docs/language.md" % len(wanted))
miss = sorted(wanted - grammar_words)
print(("ok" if not miss else "not ok") + " - every keyword of docs/language.md is in the TextMate grammar" + (" (missing: %s)" % " ".join(miss) if miss else ""))
miss = sorted(wanted - vim_words)
print(("ok" if not miss else "not ok") + " - every keyword of docs/language.md is in the Vim syntax" + (" (missing: %s)" % " ".join(miss) if miss else ""))
print(("ok" if len(wanted) > 40 else "not ok") + " - docs/language.md yields its keywords (%d)" % len(wanted))
PY
while read -r line; do
    case $line in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) fail "${line#not ok - }" ;;
    "#"*) echo "$line" ;;
    *) fail "python: $line" ;;
    esac
done < "$T/py.out"

# Vim: ftdetect sets the filetype of a .ae file, the syntax loads cleanly,
# and words land in their groups (linked to Statement, Type, Function,
# Identifier, Constant, Comment).
mkdir -p "$T/vim/syntax" "$T/vim/ftdetect" "$T/vim/ftplugin"
cp "$V" "$T/vim/syntax/ae.vim"
cp editors/vim/ftdetect/ae.vim "$T/vim/ftdetect/"
cp editors/vim/ftplugin/ae.vim "$T/vim/ftplugin/"
cp specs/vae.ae "$T/m.ae"
cat > "$T/probe.vim" <<'VIM'
set nomore
let out = [&filetype, get(b:, 'current_syntax', '')]
function! Group(pat) abort
  call cursor(1, 1)
  if search(a:pat, 'cW') == 0 | return 'not found: ' . a:pat | endif
  return synIDattr(synID(line('.'), col('.'), 1), 'name')
endfunction
call add(out, Group('\<model\>'))
call add(out, Group('\<dense\>'))
call add(out, Group('\<relu\>'))
call add(out, Group('\<lr\>'))
call add(out, Group('\<adam\>'))
call add(out, Group('#'))
call writefile(out, expand('$PROBE_OUT'))
qall!
VIM
PROBE_OUT="$T/probe.out" HOME="$T" vim -N -u NONE -i NONE -es \
    --cmd "set rtp^=$T/vim" --cmd 'filetype plugin on' --cmd 'syntax on' \
    -S "$T/probe.vim" "$T/m.ae" > "$T/vim.err" 2>&1
expect "vim loads the ae files without errors" '[ ! -s "$T/vim.err" ] || { cat "$T/vim.err"; false; }'
mapfile -t got < "$T/probe.out" 2>/dev/null || got=()
expect "ftdetect makes *.ae filetype ae" '[ "${got[0]:-}" = ae ]'
expect "the ae syntax is loaded" '[ "${got[1]:-}" = ae ]'
expect "model is an aeStatement" '[ "${got[2]:-}" = aeStatement ]'
expect "dense is an aeLayer" '[ "${got[3]:-}" = aeLayer ]'
expect "relu is an aeActivation" '[ "${got[4]:-}" = aeActivation ]'
expect "lr= is an aeKey" '[ "${got[5]:-}" = aeKey ]'
expect "adam is an aeValue" '[ "${got[6]:-}" = aeValue ]'
expect "# starts an aeComment" '[ "${got[7]:-}" = aeComment ]'

summary "editors"
