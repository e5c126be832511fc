#!/usr/bin/env bash
# Runs one firmware ELF under QEMU with the instruction-count plugin and prints its footprint.
#
# usage: tools/qemu/measure.sh ELF CPU MACHINE [MACS]
#   e.g. tools/qemu/measure.sh fw.elf cortex-m4 mps2-an386 321600
#
# Prints the firmware's semihosting output, then one line
#   measure: flash=B static_ram=B stack=B insns=N insn_per_mac=X
# flash      = .vector_table + .text + .rodata + .data (the initial values of .data live in flash)
# static_ram = .data + .bss + .uninit
# stack      = the firmware's own "stack:" report (peak during inference, by stack painting)
# insns      = guest instructions between the first instructions of bench_start and bench_stop
# Exit status: the firmware's (0 = output matched the host's checksum), 124 on timeout.
set -euo pipefail
ELF=$1; CPU=$2; MACH=$3; MACS=${4:-0}
HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT=${QEMU_TIMEOUT:-300}

NM=arm-none-eabi-nm; SIZE=arm-none-eabi-size
if ! command -v "$NM" >/dev/null; then
  B=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin
  NM=$B/llvm-nm; SIZE=$B/llvm-size
fi
PLUGIN=$("$HERE/build-plugin.sh")

read -r FLASH SRAM < <("$SIZE" -A "$ELF" | awk '
  $1==".vector_table"||$1==".text"||$1==".rodata" {f+=$2}
  $1==".data" {d+=$2}
  $1==".bss"||$1==".uninit" {b+=$2}
  END {print f+d, d+b}')
S=$("$NM" "$ELF" | awk '$3=="bench_start"{print "0x"$1}')
E=$("$NM" "$ELF" | awk '$3=="bench_stop"{print "0x"$1}')
[ -n "$S" ] && [ -n "$E" ] || { echo "measure: no bench_start/bench_stop symbols in $ELF" >&2; exit 2; }

LOG=$(mktemp); OUTF=$(mktemp)
trap 'rm -f "$LOG" "$OUTF"' EXIT
set +e
timeout "$TIMEOUT" qemu-system-arm -cpu "$CPU" -machine "$MACH" -nographic \
  -semihosting-config enable=on,target=native -icount shift=0 \
  -plugin "$PLUGIN,start=$S,stop=$E" -d plugin -D "$LOG" -kernel "$ELF" </dev/null >"$OUTF"
RC=$?
set -e
cat "$OUTF"
INSNS=$(sed -n 's/.*insncount: total=[0-9]* window=\([0-9]*\).*/\1/p' "$LOG" | tail -1)
STACK=$(sed -n 's/^stack: inference=\([0-9]*\) B.*/\1/p' "$OUTF" | tail -1)
IPM=$(awk -v n="${INSNS:-0}" -v m="$MACS" 'BEGIN{ if (m>0 && n>0) printf "%.3f", n/m; else print "-" }')
echo "measure: flash=$FLASH static_ram=$SRAM stack=${STACK:--} insns=${INSNS:--} insn_per_mac=$IPM rc=$RC"
exit $RC
