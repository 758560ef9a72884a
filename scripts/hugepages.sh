#!/usr/bin/env bash
# Hugepages for DPDK, and how to give a NIC to DPDK (vfio-pci).
#
#   scripts/hugepages.sh reserve [PAGES] [SIZE]   reserve PAGES hugepages of SIZE (2M or 1G;
#                                                 default 1024 x 2M = 2 GiB) and mount hugetlbfs
#   scripts/hugepages.sh status                   what is reserved, free and mounted
#   scripts/hugepages.sh release [SIZE]           give the pages back to the kernel
#   scripts/hugepages.sh bind-help                how to bind a NIC to vfio-pci (and back)
#
# Needs root. Tollgate's tests and scripts/compare-testpmd.sh run without hugepages
# (EAL --no-huge); a production host with a NIC wants them (docs/dpdk.md).
set -euo pipefail

MOUNT=${HUGEPAGE_MOUNT:-/dev/hugepages}

size_kb() {
  case "${1:-2M}" in
    2M|2m|2048) echo 2048 ;;
    1G|1g|1048576) echo 1048576 ;;
    *) echo "size must be 2M or 1G, not $1" >&2; exit 2 ;;
  esac
}

need_root() {
  [ "$(id -u)" = 0 ] || { echo "$0 $1: needs root" >&2; exit 1; }
}

status() {
  grep -E '^(HugePages_|Hugepagesize|Hugetlb)' /proc/meminfo
  for d in /sys/kernel/mm/hugepages/hugepages-*; do
    echo "$(basename "$d"): $(cat "$d/nr_hugepages") reserved, $(cat "$d/free_hugepages") free"
  done
  if [ -d /sys/devices/system/node/node1 ]; then
    for n in /sys/devices/system/node/node*/hugepages/hugepages-*; do
      echo "$n: $(cat "$n/nr_hugepages")"
    done
  fi
  echo "hugetlbfs mounts:"
  grep hugetlbfs /proc/mounts || echo "  none"
}

reserve() {
  need_root reserve
  local pages=${1:-1024} kb
  kb=$(size_kb "${2:-2M}")
  local sys=/sys/kernel/mm/hugepages/hugepages-${kb}kB
  [ -d "$sys" ] || { echo "this kernel has no ${kb} kB hugepages" >&2; exit 1; }
  # On a NUMA host the kernel spreads the pages over the nodes; a NIC's mempool is made
  # on the NIC's node, so give each node enough (or write per node under
  # /sys/devices/system/node/nodeN/hugepages/).
  echo "$pages" > "$sys/nr_hugepages"
  local got
  got=$(cat "$sys/nr_hugepages")
  if [ "$got" -lt "$pages" ]; then
    echo "only $got of $pages pages could be reserved (memory is fragmented: reserve at boot with hugepages=$pages on the kernel command line)" >&2
  fi
  if ! grep -q " $MOUNT hugetlbfs " /proc/mounts; then
    mkdir -p "$MOUNT"
    mount -t hugetlbfs -o "pagesize=${kb}K" nodev "$MOUNT"
    echo "mounted hugetlbfs at $MOUNT"
  fi
  echo "reserved $got pages of ${kb} kB"
  echo "use them: leave --no-huge out of dpdk.eal_args (add --huge-dir $MOUNT if it is not the only mount)"
}

release() {
  need_root release
  local kb
  kb=$(size_kb "${1:-2M}")
  echo 0 > "/sys/kernel/mm/hugepages/hugepages-${kb}kB/nr_hugepages"
  echo "released the ${kb} kB pages (pages still mapped by a running DPDK process stay until it exits)"
}

bind_help() {
  cat <<'HELP'
Giving a NIC to DPDK (the kernel stops seeing it while it is bound):

  1. IOMMU: boot with intel_iommu=on iommu=pt (Intel) or amd_iommu=on (AMD). Without an
     IOMMU (some VMs), vfio can run unsafe:
       echo 1 > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode
  2. Load the driver:            modprobe vfio-pci
  3. Find the NIC:               dpdk-devbind.py --status     (package dpdk)
  4. Take it from the kernel:    ip link set eth1 down
                                 dpdk-devbind.py --bind=vfio-pci 0000:03:00.0
  5. Reserve hugepages:          scripts/hugepages.sh reserve 1024 2M
  6. Configure Tollgate:         [access] backend = "dpdk", device = "0000:03:00.0"
                                 [dpdk] eal_args = ["-l", "0", "-a", "0000:03:00.0", "-a", "0000:03:00.1"]
  7. Give it back afterwards:    dpdk-devbind.py --bind=ixgbe 0000:03:00.0   (its kernel driver)

Mellanox (mlx5) NICs stay on their kernel driver: skip steps 2-4 and 7.
HELP
}

case "${1:-}" in
  reserve) shift; reserve "$@" ;;
  status) status ;;
  release) shift; release "$@" ;;
  bind-help) bind_help ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
