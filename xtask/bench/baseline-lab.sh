#!/usr/bin/env bash
# Shell baseline for `cargo xtask bench`: builds the seed's DR lab the way
# people do by hand (ip, ipvsadm, sysctl), in the same kernel as lvsdr's lab,
# and prints how long building and applying took. Then tears it down.
set -euo pipefail
p="base$$"
vip=192.168.1.192
start=$(date +%s%N)
ip netns add "${p}lan"
ip -n "${p}lan" link set lo up
ip -n "${p}lan" link add br0 type bridge
ip -n "${p}lan" link set br0 up
i=0
for host in client director rs1 rs2; do
  ip netns add "$p$host"
  ip -n "$p$host" link set lo up
  ip -n "${p}lan" link add "port$i" type veth peer name eth0 netns "$p$host"
  ip -n "${p}lan" link set "port$i" master br0 up
  ip -n "$p$host" link set eth0 up
  i=$((i + 1))
done
ip -n "${p}client" addr add 192.168.1.100/24 dev eth0
ip -n "${p}director" addr add 192.168.1.191/24 dev eth0
ip -n "${p}director" addr add "$vip/32" dev eth0
ip netns exec "${p}director" sysctl -q -w net.ipv4.ip_forward=1
for rs in rs1:192.168.1.213 rs2:192.168.1.189; do
  name=${rs%%:*}
  addr=${rs#*:}
  for k in lo.arp_ignore=1 lo.arp_announce=2 all.arp_ignore=1 all.arp_announce=2; do
    ip netns exec "$p$name" sysctl -q -w "net.ipv4.conf.$k"
  done
  ip -n "$p$name" addr add "$addr/24" dev eth0
  ip -n "$p$name" addr add "$vip/32" dev lo
done
ipvs() { ip netns exec "${p}director" ipvsadm "$@"; }
ipvs -C
for port in 80 25; do
  ipvs -A -t "$vip:$port" -s rr
  ipvs -a -t "$vip:$port" -r "192.168.1.213:$port" -g -w 3
  ipvs -a -t "$vip:$port" -r "192.168.1.189:$port" -g -w 1
done
end=$(date +%s%N)
echo "baseline_build_ms=$(( (end - start) / 1000000 ))"
for ns in lan client director rs1 rs2; do ip netns del "$p$ns"; done
