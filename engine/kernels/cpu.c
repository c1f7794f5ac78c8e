/* CPU feature detection (CPUID + XGETBV), the QUANTSERVE_ISA cap, and the per-ISA kernel tables. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ukernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0 read without -mxsave: the instruction is only executed once OSXSAVE says it exists. */
static uint64_t qs_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

qs_isa qs_cpu_detect_isa(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return QS_ISA_REF;
    const bool osxsave = (ecx >> 27) & 1u;
    const bool avx = (ecx >> 28) & 1u;
    const bool fma = (ecx >> 12) & 1u;
    if (!osxsave || !avx || !fma)
        return QS_ISA_REF;
    const uint64_t xcr0 = qs_xgetbv0();
    /* The OS must save XMM (bit 1) and YMM (bit 2) state, or using them corrupts registers. */
    if ((xcr0 & 0x6u) != 0x6u)
        return QS_ISA_REF;
    if (__get_cpuid_max(0, NULL) < 7)
        return QS_ISA_REF;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const bool avx2 = (ebx >> 5) & 1u;
    if (!avx2)
        return QS_ISA_REF;
    const bool avx512f = (ebx >> 16) & 1u;
    const bool avx512dq = (ebx >> 17) & 1u;
    const bool avx512bw = (ebx >> 30) & 1u;
    const bool avx512vl = (ebx >> 31) & 1u;
    const bool vnni = (ecx >> 11) & 1u;
    /* Opmask (bit 5), upper halves of ZMM0-15 (bit 6) and ZMM16-31 (bit 7). */
    const bool zmm_state = (xcr0 & 0xe0u) == 0xe0u;
    if (!(avx512f && avx512dq && avx512bw && avx512vl && zmm_state))
        return QS_ISA_AVX2;
    return vnni ? QS_ISA_AVX512VNNI : QS_ISA_AVX512;
}
#else
qs_isa qs_cpu_detect_isa(void) {
    return QS_ISA_REF;
}
#endif

const char *qs_isa_name(qs_isa isa) {
    switch (isa) {
    case QS_ISA_REF: return "ref";
    case QS_ISA_AVX2: return "avx2";
    case QS_ISA_AVX512: return "avx512";
    case QS_ISA_AVX512VNNI: return "avx512vnni";
    }
    return "unknown";
}

static pthread_once_t qs_isa_once = PTHREAD_ONCE_INIT;
static qs_isa qs_isa_chosen = QS_ISA_REF;

static void qs_isa_decide(void) {
    qs_isa isa = qs_cpu_detect_isa();
    const char *cap = getenv("QUANTSERVE_ISA");
    if (cap && *cap) {
        /* An unknown value leaves the detected ISA: a typo must not slow a server to ref. */
        static const qs_isa all[] = {QS_ISA_REF, QS_ISA_AVX2, QS_ISA_AVX512, QS_ISA_AVX512VNNI};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            if (strcmp(cap, qs_isa_name(all[i])) == 0) {
                if (all[i] < isa)
                    isa = all[i];
                break;
            }
        }
    }
    qs_isa_chosen = isa;
}

qs_isa qs_engine_isa(void) {
    pthread_once(&qs_isa_once, qs_isa_decide);
    return qs_isa_chosen;
}

static const qs_f32_kernels qs_f32_kernels_ref = {
    .isa = QS_ISA_REF,
    .gemm_name = "qs_f32_gemm__ref",
    .mr = QS_F32_GEMM_REF_MR,
    .nr = QS_F32_GEMM_REF_NR,
    .gemm = qs_f32_gemm__ref,
    .dwconv_name = "qs_f32_dwconv__ref",
    .dwconv = qs_f32_dwconv__ref,
    .dw_block = 8,
    .act = qs_f32_act__ref,
};

static const qs_f32_kernels qs_f32_kernels_avx2 = {
    .isa = QS_ISA_AVX2,
    .gemm_name = "qs_f32_gemm_6x16__avx2",
    .mr = 6,
    .nr = 16,
    .gemm = qs_f32_gemm_6x16__avx2,
    .dwconv_name = "qs_f32_dwconv__avx2",
    .dwconv = qs_f32_dwconv__avx2,
    .dw_block = 8,
    .act = qs_f32_act__avx2,
};

static const qs_f32_kernels qs_f32_kernels_avx512 = {
    .isa = QS_ISA_AVX512,
    .gemm_name = "qs_f32_gemm_8x32__avx512",
    .mr = 8,
    .nr = 32,
    .gemm = qs_f32_gemm_8x32__avx512,
    .dwconv_name = "qs_f32_dwconv__avx512",
    .dwconv = qs_f32_dwconv__avx512,
    .dw_block = 16,
    .act = qs_f32_act__avx512,
};

/* Tests may swap in an emulated AVX-512 table; production code never calls the setter. */
static const qs_f32_kernels *qs_f32_kernels_avx512_active = &qs_f32_kernels_avx512;

void qs_f32_kernels_test_replace_avx512(const qs_f32_kernels *table) {
    qs_f32_kernels_avx512_active = table ? table : &qs_f32_kernels_avx512;
}

const qs_f32_kernels *qs_f32_kernels_get(qs_isa isa) {
    switch (isa) {
    case QS_ISA_AVX2: return &qs_f32_kernels_avx2;
    case QS_ISA_AVX512:
    case QS_ISA_AVX512VNNI: return qs_f32_kernels_avx512_active;
    case QS_ISA_REF: break;
    }
    return &qs_f32_kernels_ref;
}
