# tests/layers_lib.sh — the layering check tests/layers.sh (the runtime)
# and tests/compiler_layers.sh (the compiler) share; both source it.
#
# The modules of each share one internal header, so #includes alone cannot
# show who uses whom: this reads it from the objects. A module uses another
# when one of its undefined symbols is defined there (nm). check_layers
# prints each module's includes and the modules it uses, then fails if the
# use graph has a cycle (tsort), if a module uses one of its own or a higher
# layer, or if a module is in no layer.
#
# The caller sets LAYERS (bottom first; a pattern may be a glob), WHO (the
# messages' prefix), WHOSE ("the runtime's"), SRC (the sources' directory)
# and ROW (the printf format of a module's line: name, includes, uses), and
# defines use_rule M U and module_rule M INCLUDES, its own rules, which call
# fail. After check_layers, `fails` counts the failures and `nmodules` the
# modules checked.

# The layer of module $1, or -1.
layer_of() {
    local i p
    for i in "${!LAYERS[@]}"; do
        for p in ${LAYERS[$i]}; do
            # shellcheck disable=SC2053 # $p is a glob on purpose
            [[ $1 == $p ]] && { echo "$i"; return; }
        done
    done
    echo -1
}

fails=0
fail() { echo "$WHO: $*" >&2; fails=$((fails + 1)); }

# A module's name from its object: grammar/*.o is the module `grammar`.
name_of() { case $1 in */grammar/*) echo grammar ;; *) basename "$1" .o ;; esac; }

# check_layers DIR [MORE_DIR...]: the modules DIR/*.o, using one another and
# the objects of MORE_DIR (which are checked too only when they are in DIR).
check_layers() {
    local dir=$1 o m uses includes lm lu u tmp
    shift
    local objs=("$dir"/*.o) more=()
    for o in "$@"; do more+=("$o"/*.o); done
    [ -e "${objs[0]}" ] || { echo "$WHO: no objects in $dir (build first)" >&2; exit 1; }
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064 # the directory is known now
    trap "rm -rf '$tmp'" EXIT
    for o in "${objs[@]}" "${more[@]}"; do
        [ -e "$o" ] || continue
        nm --defined-only -g "$o" | awk -v m="$(name_of "$o")" 'NF == 3 {print $3, m}'
    done | sort > "$tmp/defs"

    for o in "${objs[@]}"; do
        m=$(name_of "$o")
        uses=$(nm -u "$o" | awk '{print $2}' | sort -u | join - "$tmp/defs" | awk '{print $2}' |
               sort -u | grep -vx "$m" | tr '\n' ' ')
        includes=$(sed -n 's/^#include "\(.*\)".*/\1/p' "$SRC/$m.c" | tr '\n' ' ')
        # shellcheck disable=SC2059 # the caller's format
        printf "$ROW" "$m" "$includes" "${uses:-(nothing)}"
        lm=$(layer_of "$m")
        if [ "$lm" -lt 0 ]; then fail "$SRC/$m.c is in no layer: add it to LAYERS in $0"; continue; fi
        for u in $uses; do
            echo "$u $m" >> "$tmp/edges" # tsort: u comes before m
            lu=$(layer_of "$u")
            [ "$lu" -lt "$lm" ] || fail "$m (layer $lm) uses $u (layer $lu): only lower layers may be used"
            use_rule "$m" "$u"
        done
        module_rule "$m" "$includes"
    done
    if [ -s "$tmp/edges" ] && ! tsort "$tmp/edges" > /dev/null 2> "$tmp/tsort"; then
        fail "$WHOSE modules use each other in a cycle:"
        sed 's/^tsort: /  /' "$tmp/tsort" >&2
    fi
    nmodules=${#objs[@]}
}
