#!/usr/bin/env bash
# The steps of the lvsdr-lab action, one subcommand each, in the order
# action.yml runs them:
#
#   source   where lvsdr's source is (this action's own checkout) and the cache key of its build
#   install  build lvsdr from that source into $LVSDR_HOME, unless the cache restored it
#   lint     lvsdr lint --format github: findings as annotations on the pull request
#   kernel   whether the lab needs User-Mode Linux (then action.yml runs `cargo xtask setup-uml`)
#   lab      lvsdr lab --format json, the report as a job summary
#   verdict  fail the job, with one readable line, if lint or the lab failed
#
# Inputs come as environment variables (FILES, LINT, LAB, KERNEL, CONNECTIONS);
# GitHub's own variables (RUNNER_TEMP, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY,
# GITHUB_WORKSPACE, GITHUB_ACTION_PATH) as a runner sets them. The steps pass
# what they learn to later steps through files in $RUNNER_TEMP/lvsdr-lab.
# Nothing from the inputs or the report reaches a shell command line unquoted,
# a workflow command unescaped, or the summary's Markdown as markup.
set -euo pipefail

state="${RUNNER_TEMP:?RUNNER_TEMP is not set}/lvsdr-lab"
mkdir -p "$state"
action_path="${GITHUB_ACTION_PATH:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
source_root="$(cd "$action_path/../../.." && pwd)"
lvsdr_home="${LVSDR_HOME:-$HOME/.cache/lvsdr-action}"
lvsdr="$lvsdr_home/bin/lvsdr"

# A workflow command's message: %, CR and LF escaped (GitHub's rules).
escape_data() {
  local s="${1//%/%25}"
  s="${s//$'\r'/%0D}"
  printf '%s' "${s//$'\n'/%0A}"
}

error() {
  printf '::error title=lvsdr-lab::%s\n' "$(escape_data "$1")"
}

# Runs as root when it must: the lab needs it, the runner's user has sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo --preserve-env=LVSDR_UML_DIR,LVSDR_DOCS_URL "$@"; fi
}

# The files input, split on spaces, tabs and newlines, without glob expansion.
read_files() {
  files=()
  local IFS=$' \t\n'
  set -f
  # shellcheck disable=SC2206 # splitting is the point; globbing is off
  files=(${FILES:-})
  set +f
  if [ "${#files[@]}" -eq 0 ]; then
    error "the input \`files\` is empty: name the topology, or the files of one setup (a director's script with the real servers' script)"
    exit 2
  fi
}

# Unpredictable, so output from lvsdr (which quotes the input) cannot turn workflow commands back on.
stop_token() {
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

step_source() {
  if [ ! -f "$source_root/harness/Cargo.toml" ]; then
    error "lvsdr's source is not beside this action (looked in $source_root)"
    exit 3
  fi
  # The runner checked this action out at its ref (a tag, a commit, or a branch's
  # commit of today): building that tree pins lvsdr to the action's own version.
  # The key names the ref and hashes the tree, so a branch that moved builds again.
  local hash
  hash="$(cd "$source_root" && find Cargo.toml Cargo.lock core/Cargo.toml core/src harness/Cargo.toml harness/src -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  local ref="${ACTION_REF:-local}"
  ref="${ref//[^A-Za-z0-9._-]/_}"
  {
    echo "key=lvsdr-${RUNNER_OS:-Linux}-${RUNNER_ARCH:-X64}-${ref}-${hash}"
    echo "home=$lvsdr_home"
  } >>"${GITHUB_OUTPUT:-/dev/null}"
  echo "lvsdr source: $source_root (ref ${ACTION_REF:-none: a local action}, tree $hash)"
}

step_install() {
  if [ -x "$lvsdr" ] && "$lvsdr" --version >/dev/null 2>&1; then
    echo "lvsdr from the cache: $("$lvsdr" --version)"
    return
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    error "cargo is not installed: add \`dtolnay/rust-toolchain@stable\` before this action"
    exit 3
  fi
  cargo install --locked --path "$source_root/harness" --root "$lvsdr_home"
  "$lvsdr" --version
}

step_lint() {
  read_files
  local status=0
  "$lvsdr" lint --format github -- "${files[@]}" || status=$?
  echo "$status" >"$state/lint.status"
  case "$status" in
    0) echo "lvsdr lint: no errors" ;;
    1) echo "lvsdr lint: errors (annotated on the files above)" ;;
    2) error "lvsdr lint could not read the input (exit 2): the reason is above" ;;
    *) error "lvsdr lint ended with exit $status" ;;
  esac
}

step_kernel() {
  local kernel="${KERNEL:-auto}" uml=false
  case "$kernel" in
    uml) uml=true ;;
    host) ;;
    auto)
      if [ ! -e /proc/net/ip_vs ] && ! as_root modprobe -q ip_vs 2>/dev/null && [ ! -e /proc/net/ip_vs ]; then
        uml=true
      fi
      ;;
    *)
      error "the input \`kernel\` must be auto, host or uml"
      exit 2
      ;;
  esac
  echo "uml=$uml" >>"${GITHUB_OUTPUT:-/dev/null}"
  echo "source=$source_root" >>"${GITHUB_OUTPUT:-/dev/null}"
  echo "kernel: $kernel$([ "$uml" = true ] && echo ', User-Mode Linux needed')"
}

# The HTML special characters escaped, for text inside <pre>.
html() {
  sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'
}

step_lab() {
  read_files
  local report="$state/report.json" log="$state/lab.stderr" status=0 token
  rm -f "$report" "$log" "$state/lab.pcapng"
  token="$(stop_token)"
  echo "::stop-commands::$token"
  # The frames of every leg go beside the report, for Wireshark: uploaded with it when the job fails.
  as_root "$lvsdr" lab --connections "${CONNECTIONS:-8}" --kernel "${KERNEL:-auto}" --format json --pcap "$state/lab.pcapng" -- "${files[@]}" \
    >"$report" 2> >(tee "$log" >&2) || status=$?
  wait
  # The checks, for the log.
  if [ -s "$report" ] && "$lvsdr" summary --format human "$report" 2>/dev/null; then :; fi
  echo "::$token::"
  echo "$status" >"$state/lab.status"
  local summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
  if [ -s "$report" ] && "$lvsdr" summary "$report" >"$state/summary.md" 2>"$state/summary.stderr"; then
    cat "$state/summary.md" >>"$summary"
  else
    local why
    case "$status" in
      2) why="lvsdr lab could not use the input, or cannot run as asked (exit 2)" ;;
      3) why="the lab itself could not run: kernel, User-Mode Linux or namespaces (exit 3)" ;;
      0 | 1) why="lvsdr lab wrote no readable report (exit $status)" ;;
      *) why="lvsdr lab ended with exit $status and no report" ;;
    esac
    error "$why: the reason is above"
    {
      printf '### ❌ lvsdr lab: %s\n\n<pre>\n' "$why"
      tail -n 40 "$log" 2>/dev/null | html
      printf '</pre>\n\n'
    } >>"$summary"
    rm -f "$report"
  fi
  case "$status" in
    0) echo "lvsdr lab: every check passed" ;;
    1) error "lvsdr lab: a check failed; the job summary shows which" ;;
  esac
}

step_verdict() {
  local lint lab failed=0
  lint="$(cat "$state/lint.status" 2>/dev/null || echo skipped)"
  lab="$(cat "$state/lab.status" 2>/dev/null || echo skipped)"
  echo "lvsdr lint: $lint, lvsdr lab: $lab (exit codes: 0 pass, 1 failed, 2 unusable input, 3 the lab could not run)"
  for s in "$lint" "$lab"; do
    case "$s" in 0 | skipped) ;; *) failed=1 ;; esac
  done
  if [ "$failed" = 1 ]; then
    error "lvsdr: lint exit $lint, lab exit $lab"
    exit 1
  fi
}

case "${1:-}" in
  source | install | lint | kernel | lab | verdict) "step_$1" ;;
  *)
    echo "usage: $0 source|install|lint|kernel|lab|verdict" >&2
    exit 2
    ;;
esac
