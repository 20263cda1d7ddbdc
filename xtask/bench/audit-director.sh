#!/usr/bin/env bash
# Audits a director programmed from an `ipvsadm -S -n` dump, inside the lab's
# kernel (run it through `lvsdr kernel-exec`): `lvsdr audit` against
# `ipvsadm -S -n`, timed one after the other. Used by `cargo xtask bench` and
# by harness/tests/audit.rs.
#
#   audit-director.sh LVSDR DUMP RUNS
#
# Prints the first audit as JSON between `@@begin production` and
# `@@end production EXIT`, then one `@@time AUDIT_MS IPVSADM_MS` line a run.
set -u
L=$1 D=$2 RUNS=$3
mkdir -p /run/bench && cd /run/bench || exit 90
"$L" render "$D" --artifact restore > restore.txt || exit 91
# A literal "$dev", as the generated director script writes it:
# shellcheck disable=SC2016
"$L" render "$D" --artifact director | grep '^ip addr' | sed 's/"\$dev"/eth0/' > vips.sh || exit 92
ip netns add dir || exit 93
ip -n dir link add eth0 type veth peer name eth0p || exit 94
ip -n dir link set lo up
ip -n dir link set eth0 up
ip -n dir addr add 192.168.1.1/24 dev eth0
ip netns exec dir sh vips.sh || exit 95
ip netns exec dir ipvsadm -R < restore.txt || exit 96
out=$(ip netns exec dir "$L" audit "$D" --host director --format json)
code=$?
echo "@@begin production"
echo "$out"
echo "@@end production $code"
ms() { echo $((($2 - $1) / 1000000)); }
for _ in $(seq "$RUNS"); do
  a=$(date +%s%N)
  ip netns exec dir "$L" audit "$D" --host director > /dev/null
  b=$(date +%s%N)
  ip netns exec dir ipvsadm -S -n > /dev/null
  c=$(date +%s%N)
  echo "@@time $(ms "$a" "$b") $(ms "$b" "$c")"
done
exit 0
