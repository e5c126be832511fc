/* QEMU TCG plugin: counts guest instructions, in total and between two PCs.
 *
 *   qemu-system-arm ... -plugin libinsncount.so,start=0xADDR,stop=0xADDR -d plugin -D insn.log
 *   -> "insncount: total=N window=W windows=K"
 *
 * The window count is the number of instructions executed from the first instruction at
 * `start` up to (not including) the first instruction at `stop`; repeated windows are summed.
 * The firmware's `bench_start` / `bench_stop` marker functions give the two addresses
 * (tools/qemu/measure.sh looks them up with nm).
 *
 * Plugin API version 1 (QEMU 4.2 .. 8.1, e.g. Debian 12's QEMU 7.2). The file declares the
 * few API items it uses instead of including qemu-plugin.h, so only a C compiler is needed:
 *   tools/qemu/build-plugin.sh   (gcc -O2 -shared -fPIC)
 * QEMU 8.2+ replaced the inline-counter call used here by the per-vCPU scoreboard API; on
 * those versions port the plugin or count with `-icount shift=0` and SysTick instead.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t total;            /* single vCPU (Cortex-M) */
static uint64_t start_pc = UINT64_MAX, stop_pc = UINT64_MAX;
static uint64_t t_start, window, n_windows;
static bool in_window;

static void on_start(unsigned int vcpu, void *u) { (void)vcpu; (void)u;
    if (!in_window) { in_window = true; t_start = total; } }
static void on_stop(unsigned int vcpu, void *u) { (void)vcpu; (void)u;
    if (in_window) { in_window = false; window += total - t_start; n_windows++; } }

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        if (pc == start_pc)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        if (pc == stop_pc)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &total, 1);
    }
}

static void at_exit(qemu_plugin_id_t id, void *u)
{
    (void)id; (void)u;
    char buf[256];
    snprintf(buf, sizeof buf, "insncount: total=%" PRIu64 " window=%" PRIu64 " windows=%" PRIu64 "\n",
             total, window, n_windows);
    qemu_plugin_outs(buf);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        /* Thumb symbol values are odd (bit 0 = Thumb); insn vaddrs are even. */
        if (!strncmp(argv[i], "start=", 6)) start_pc = strtoull(argv[i] + 6, NULL, 0) & ~1ULL;
        else if (!strncmp(argv[i], "stop=", 5)) stop_pc = strtoull(argv[i] + 5, NULL, 0) & ~1ULL;
        else { fprintf(stderr, "insncount: unknown arg %s\n", argv[i]); return -1; }
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
