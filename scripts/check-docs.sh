#!/usr/bin/env bash
# Documentation and packaging drift checks, run by `make unit` after the unit tests (and so by `make check`):
#   scripts/check-docs.sh [BINARY]      (default: ./replicate)
# - every --option that BINARY --help prints has an entry in the man page (a .TP heading in
#   replicator/replicate.1) and is in the bash completion's static list;
# - the man page renders without groff/man warnings;
# - the bash completion completes options (from --help on PATH, and from its list) and their values;
# - the systemd units pass systemd-analyze verify (skipped, saying so, when systemd-analyze is absent);
# - scripts/k8s/replicate-job.yaml validates (kubectl apply --dry-run=client where kubectl is installed; always
#   tests/tools/check_k8s_job.py, a schema check of its fields, and that it refuses broken copies);
# - the unit, env, cron and Job files README.md shows (after a "<!-- file: PATH -->" line) are the files.
# Prints one line per check and ends with "docs: N passed, M failed"; exit 0 only if nothing failed.
set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
bin=${1:-./replicate}
man_page=replicator/replicate.1
completion=scripts/completion/replicate.bash
units=scripts/systemd

passed=0 failed=0
ok() { echo "docs: ok   $*"; passed=$((passed + 1)); }
bad() { echo "docs: FAIL $*"; failed=$((failed + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x "$bin" ] || { bad "$bin is not an executable (build it first: make)"; echo "docs: $passed passed, $failed failed"; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# words: the --options in a text, one per line, sorted, without repeats
long_options() { grep -oE -- '(^|[^a-zA-Z0-9-])--[a-z][a-z0-9-]*' | sed 's/^[^-]*//' | LC_ALL=C sort -u; }
has_word() { grep -qE -- "(^|[^a-zA-Z0-9-])$1([^a-zA-Z0-9-]|\$)"; } # OPTION < TEXT

# ---- (a) every option of --help is in the man page and the completion
"$bin" --help >"$tmp/help" 2>&1 || { bad "$bin --help failed"; }
long_options <"$tmp/help" >"$tmp/help.opts"
n_opts=$(wc -l <"$tmp/help.opts")
[ "$n_opts" -ge 10 ] || bad "$bin --help names only $n_opts options: is it the right binary?"
# the man page's option entries: the line after each .TP, with \- as - and font changes removed
awk 'tp { print; tp = 0 } /^\.TP/ { tp = 1 }' "$man_page" | sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' >"$tmp/man.tp"
sed -n '/^_replicate_static_options="/,/^"/p' "$completion" >"$tmp/comp.static"
miss_man=() miss_comp=()
while read -r opt; do
  has_word "$opt" <"$tmp/man.tp" || miss_man+=("$opt")
  has_word "$opt" <"$tmp/comp.static" || miss_comp+=("$opt")
done <"$tmp/help.opts"
if [ ${#miss_man[@]} -eq 0 ]; then ok "man page has an entry for each of the $n_opts options of --help"
else bad "$man_page has no .TP entry for: ${miss_man[*]}"; fi
if [ ${#miss_comp[@]} -eq 0 ]; then ok "completion's option list has each of the $n_opts options of --help"
else bad "$completion's static list lacks: ${miss_comp[*]}"; fi
# documented ahead of --help (the restore options until they land): said, not failed
ahead=$(long_options <"$tmp/man.tp" | LC_ALL=C comm -23 - "$tmp/help.opts" | tr '\n' ' ')
[ -n "$ahead" ] && echo "docs: note: the man page documents options --help does not print: $ahead"

# ---- (b) the man page renders without warnings
if command -v groff >/dev/null; then
  if groff -man -ww -z "$man_page" >"$tmp/groff.err" 2>&1 && [ ! -s "$tmp/groff.err" ]; then
    ok "groff -man -ww -z $man_page: no warnings"
  else
    bad "groff -man -ww -z $man_page: $(head -c 2000 "$tmp/groff.err")"
  fi
else
  bad "groff is missing (apt-get install groff-base, or make deps)"
fi
if command -v man >/dev/null; then
  if MANWIDTH=80 man --warnings -l "$man_page" >"$tmp/man.out" 2>"$tmp/man.err" && [ ! -s "$tmp/man.err" ] &&
    grep -q 'EXIT STATUS' "$tmp/man.out"; then
    ok "man --warnings -l $man_page: renders, no warnings"
  else
    bad "man --warnings -l $man_page: $(head -c 2000 "$tmp/man.err")"
  fi
else
  bad "man is missing (apt-get install man-db, or make deps)"
fi

# ---- the bash completion, called as bash calls it: COMP_WORDS/COMP_CWORD set, COMPREPLY read back
# shellcheck disable=SC2016 # the inner script expands its own arguments
complete_words() { # PATH-FOR-REPLICATE WORD...: prints the completions of the last word, one per line
  local path=$1
  shift
  PATH=$path HOME=$tmp/home AWS_CONFIG_FILE=$tmp/aws-config AWS_SHARED_CREDENTIALS_FILE=$tmp/aws-credentials \
    "$BASH" --norc --noprofile -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _replicate
      printf "%s\n" "${COMPREPLY[@]}"' bash "$root/$completion" replicate "$@" | LC_ALL=C sort
}
expect() { # WHAT EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "completion: $1"
  else bad "completion: $1: expected [$(tr '\n' ' ' <<<"$2")], got [$(tr '\n' ' ' <<<"$3")]"; fi
}
# PATH holds only what the completion runs besides builtins (sort), then the replicate under test if any
mkdir -p "$tmp/home" "$tmp/tools" "$tmp/onpath" "$tmp/stub"
ln -s "$(command -v sort)" "$tmp/tools/sort"
ln -s "$bin" "$tmp/onpath/replicate"
tools=$tmp/tools
cat >"$tmp/aws-config" <<'EOF'
[default]
region = eu-west-1
[profile aws]
region = us-east-1
[profile  b2 ]
s3 =
  endpoint_url = https://s3.eu-central-003.backblazeb2.com
[sso-session corp]
sso_region = us-east-1
EOF
printf '[default]\naws_access_key_id = x\n[wasabi]\naws_access_key_id = y\n' >"$tmp/aws-credentials"
# the options --help prints starting with --ret, from the binary on PATH ...
want=$(grep -E '^--ret' "$tmp/help.opts")
expect "'replicate --ret' with $bin on PATH gives the --help options" "$want" \
  "$(complete_words "$tmp/onpath:$tools" --ret)"
# ... from a newer --help (a stub printing options this binary does not have yet) ...
printf '#!/bin/sh\necho "  --retain DURATION  --retain-mode MODE (governance, compliance)  --retries N"\n' >"$tmp/stub/replicate"
chmod +x "$tmp/stub/replicate"
expect "'replicate --ret' follows --help of the replicate on PATH" "$(printf -- '--retain\n--retain-mode\n--retries')" \
  "$(complete_words "$tmp/stub:$tools" --ret)"
# ... and from the static list when no replicate is on PATH
want=$(grep -oE -- '--[a-z][a-z0-9-]*' "$tmp/comp.static" | grep -E '^--ret' | LC_ALL=C sort -u)
expect "'replicate --ret' without replicate on PATH gives the static list's" "$want" \
  "$(complete_words "$tools" --ret)"
expect "'replicate --' without replicate on PATH gives every option of --help (and more)" "" \
  "$(LC_ALL=C comm -23 "$tmp/help.opts" <(complete_words "$tools" --))"
expect "'--source-profile <TAB>' lists the profiles of AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE" \
  "$(printf 'aws\nb2\ndefault\nwasabi')" "$(complete_words "$tmp/onpath:$tools" --source-profile '')"
expect "'--target-profile=w<TAB>'" "wasabi" "$(complete_words "$tmp/onpath:$tools" --target-profile = w)"
expect "'--storage-class GLACIER<TAB>'" "$(printf 'GLACIER\nGLACIER_IR')" \
  "$(complete_words "$tmp/onpath:$tools" --storage-class GLACIER)"
expect "'--retain-mode <TAB>'" "$(printf 'compliance\ngovernance')" \
  "$(complete_words "$tmp/onpath:$tools" --retain-mode '')"
expect "'--log-format <TAB>'" "$(printf 'human\njson')" "$(complete_words "$tmp/onpath:$tools" --log-format '')"
mkdir -p "$tmp/home/states/one" && touch "$tmp/home/states/file"
expect "'--state-dir DIR<TAB>' gives directories" "$tmp/home/states/one" \
  "$(complete_words "$tmp/onpath:$tools" --state-dir "$tmp/home/states/")"
expect "'--metrics-file DIR<TAB>' gives files" "$(printf '%s\n' "$tmp/home/states/file" "$tmp/home/states/one")" \
  "$(complete_words "$tmp/onpath:$tools" --metrics-file "$tmp/home/states/")"
expect "'--jobs <TAB>' offers nothing" "" "$(complete_words "$tmp/onpath:$tools" --jobs '')"
expect "an operand gives s3://" "s3://" "$(complete_words "$tmp/onpath:$tools" --json '')"

# ---- the systemd units: copies in a temp dir, ExecStart pointing at this binary, the man page on MANPATH
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$tmp/units" "$tmp/man/man1"
  cp "$man_page" "$tmp/man/man1/"
  for f in "$units"/*.service "$units"/*.timer; do
    sed "s|/usr/bin/replicate|$bin|" "$f" >"$tmp/units/$(basename "$f")"
  done
  if (cd "$tmp/units" && MANPATH=$tmp/man SYSTEMD_UNIT_PATH=$tmp/units: \
    systemd-analyze verify "$tmp/units/replicate@.service" "$tmp/units/replicate@.timer" \
      "$tmp/units/replicate-failure@.service") >"$tmp/verify.out" 2>&1 && [ ! -s "$tmp/verify.out" ]; then
    ok "systemd-analyze verify $units/*: clean"
  else
    bad "systemd-analyze verify $units/*: $(head -c 2000 "$tmp/verify.out")"
  fi
else
  echo "docs: SKIP systemd-analyze verify: systemd-analyze is not installed (apt-get install systemd, or make deps)"
fi

# ---- the Kubernetes Indexed Job validates: kubectl where there is one, else a schema check of its fields
job=scripts/k8s/replicate-job.yaml
# (kubectl maps kinds and downloads the schema from a cluster even for a client-side dry run)
if ! command -v kubectl >/dev/null; then
  echo "docs: SKIP kubectl apply --dry-run=client -f $job: kubectl is not installed"
elif ! timeout 10 kubectl --request-timeout=5s get --raw /version >/dev/null 2>&1; then
  echo "docs: SKIP kubectl apply --dry-run=client -f $job: kubectl reaches no cluster"
elif timeout 60 kubectl apply --dry-run=client -f "$job" >"$tmp/kubectl.out" 2>&1; then
  ok "kubectl apply --dry-run=client -f $job"
else
  bad "kubectl apply --dry-run=client -f $job: $(head -c 1000 "$tmp/kubectl.out")"
fi
if python3 -c 'import yaml' 2>/dev/null; then
  if python3 tests/tools/check_k8s_job.py "$job" "$bin" >"$tmp/job.out" 2>&1; then ok "$job: the fields of an Indexed Job of replicate"
  else bad "$job: $(tr '\n' ';' <"$tmp/job.out" | head -c 1500)"; fi
  if python3 tests/tools/check_k8s_job.py --mutants "$job" "$bin" >"$tmp/mutants.out" 2>&1; then
    ok "$job: the check refuses $(grep -c '^refused' "$tmp/mutants.out") broken copies of it"
  else bad "the schema check of $job accepts broken copies: $(grep ACCEPTED "$tmp/mutants.out" | tr '\n' ';')"; fi
else
  bad "python3-yaml is missing: cannot check $job (apt-get install python3-yaml, or make deps)"
fi

# ---- the files README.md shows are the files: "<!-- file: PATH -->", then a ``` block with PATH's content
shown=0
while read -r path; do
  shown=$((shown + 1))
  awk -v p="$path" '
    $0 == "<!-- file: " p " -->" { want = 1; next }
    want && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' README.md >"$tmp/shown"
  if [ ! -f "$path" ]; then bad "README.md shows $path, which does not exist"
  elif cmp -s "$tmp/shown" "$path"; then ok "README.md shows $path as it is"
  else bad "README.md's copy of $path differs from the file: $(diff "$tmp/shown" "$path" | head -n 6 | tr '\n' ' ')"; fi
done < <(sed -n 's/^<!-- file: \(.*\) -->$/\1/p' README.md)
for f in "$units"/*; do
  grep -qxF "<!-- file: $f -->" README.md || bad "README.md does not show $f"
done
[ "$shown" -gt 0 ] || bad "README.md shows none of the files in $units"

echo "docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
