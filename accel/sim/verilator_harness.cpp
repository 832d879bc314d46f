// Stream harness for a Verilated accel component (template; filled in by accel/sim/verilator.py).
//
// Usage: sim IN.bin OUT.bin [WAVE START STOP]
// IN.bin : "ACCVIN01", u64 n_words, u64 n_valid, u64 n_ready, u64 max_cycles, u64 per_bit, u64 n_record,
//          n_record x u64 (indices of counted signals whose value to record each cycle),
//          n_words x IN_WORDS u32 (payload words, little-endian 32-bit chunks),
//          n_valid bytes (i.valid pattern), n_ready bytes (o.ready pattern).
// OUT.bin: "ACCVOUT2", u64 n_out, i64 last_cycle, u64 samples, u64 n_signals, f64 seconds (cycle loop),
//          n_out x OUT_WORDS u32 (output payload words),
//          n_signals x u64 toggle counts, n_signals x u64 change counts (sampled steps in which the
//          signal changed: the enables of RTL clock gating), [per_bit] 32 x STATE_WORDS u64 per-bit counts,
//          [n_record] samples x (the recorded signals' words, u32) .
// WAVE   : in a trace build (TRACE 1: VCD, 2: FST), the waveform of cycles START <= c < STOP (time in ns:
//          cycle c's inputs and falling clock at c * PERIOD_NS, its rising edge half a period later).
//
// Cycle loop (the contract of accel/sim/pysim.py run_stream): stop once every input has come out;
// otherwise drive i.valid (and i.payload when offering; it holds its value otherwise) and o.ready from
// the patterns (true past their end), settle, sample toggles, record the handshakes, clock.
// Toggles (accel/sim/toggles.py): per bit, settled values sampled once per clock before the rising
// edge; the first sample only sets the reference.

// The harness (toggle counting included) is small and hot: optimise it fully whatever OPT_FAST says.
#pragma GCC optimize("O2")

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define N_SIGNALS /*@N_SIGNALS@*/
#define STATE_WORDS /*@STATE_WORDS@*/
#define TRACE /*@TRACE@*/
static const size_t IN_WORDS = /*@IN_WORDS@*/;
static const size_t OUT_WORDS = /*@OUT_WORDS@*/;

#if TRACE == 1
#include "verilated_vcd_c.h"
typedef VerilatedVcdC Trace;
#elif TRACE == 2
#include "verilated_fst_c.h"
typedef VerilatedFstC Trace;
#endif
static const uint64_t PERIOD_NS = /*@PERIOD_NS@*/;

static void fail(const char* what) {
    fprintf(stderr, "%s\n", what);
    exit(3);
}

static void read_exact(FILE* f, void* buf, size_t n) {
    if (n && fread(buf, 1, n, f) != n) fail("short input file");
}

static inline void set_payload(Vtop* top, const uint32_t* w) {
/*@SET_PAYLOAD@*/
}

static inline void get_payload(Vtop* top, uint32_t* w) {
/*@GET_PAYLOAD@*/
}

#if N_SIGNALS
// Toggle counting. Each clock the counted signals are gathered into one array of 32-bit words (signal
// after signal, in table order); the words are XORed with the previous clock's array and the set bits
// counted per word (AVX2 when the CPU has it, 8 words at a time), the per-word counts summed per
// signal at the end. The two arrays swap roles each clock. Clocks and signals without a readable
// variable are never written: their words stay 0 and never toggle.
#include <immintrin.h>

static const uint32_t signal_words[N_SIGNALS] = {/*@SIGNAL_WORDS@*/};
#define PADDED_WORDS ((STATE_WORDS + 7) / 8 * 8)
alignas(32) static uint32_t buf_a[PADDED_WORDS], buf_b[PADDED_WORDS];
alignas(32) static uint32_t word_counts[PADDED_WORDS];  // flushed into word_totals before overflow
static uint64_t word_totals[PADDED_WORDS];
static uint64_t bits[32 * STATE_WORDS];
static uint64_t changes[N_SIGNALS];
static uint32_t* cur = buf_a;
static uint32_t* prev = buf_b;
static bool per_bit = false;
static bool have_avx2 = false;

static void gather(const Vtop___024root* r, uint32_t* w) {
/*@GATHER@*/
}

static void count_scalar() {
    for (size_t k = 0; k < PADDED_WORDS; ++k) word_counts[k] += __builtin_popcount(cur[k] ^ prev[k]);
}

__attribute__((target("avx2"))) static void count_avx2() {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    const __m256i ones8 = _mm256_set1_epi8(1);
    const __m256i ones16 = _mm256_set1_epi16(1);
    for (size_t k = 0; k < PADDED_WORDS; k += 8) {
        const __m256i x = _mm256_xor_si256(_mm256_load_si256((const __m256i*)(cur + k)),
                                           _mm256_load_si256((const __m256i*)(prev + k)));
        const __m256i lo = _mm256_and_si256(x, low);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
        const __m256i c8 = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
        const __m256i c32 = _mm256_madd_epi16(_mm256_maddubs_epi16(c8, ones8), ones16);
        __m256i* acc = (__m256i*)(word_counts + k);
        _mm256_store_si256(acc, _mm256_add_epi32(_mm256_load_si256(acc), c32));
    }
}

static void count_changes() {
    for (size_t i = 0, k = 0; i < N_SIGNALS; ++i) {
        uint32_t x = 0;
        for (uint32_t j = 0; j < signal_words[i]; ++j, ++k) x |= cur[k] ^ prev[k];
        changes[i] += x != 0;
    }
}

static void flush_word_counts() {
    for (size_t k = 0; k < PADDED_WORDS; ++k) {
        word_totals[k] += word_counts[k];
        word_counts[k] = 0;
    }
}

// One clock's sample: gather, count against the previous sample (not for the first: it only sets the
// reference), swap.
static void sample_toggles(const Vtop___024root* r, uint64_t samples) {
    gather(r, cur);
    if (samples > 0) {
        if (have_avx2) count_avx2(); else count_scalar();
        count_changes();
        if (per_bit)
            for (size_t k = 0; k < STATE_WORDS; ++k)
                for (uint32_t x = cur[k] ^ prev[k]; x; x &= x - 1) ++bits[32 * k + __builtin_ctz(x)];
        if ((samples & ((1u << 26) - 1)) == 0) flush_word_counts();  // 32 toggles a word at most
    }
}

static void swap_samples() {
    uint32_t* t = cur;
    cur = prev;
    prev = t;
}
#endif

int main(int argc, char** argv) {
    if (argc != 3 && !(TRACE && argc == 6)) fail(TRACE ? "usage: sim IN.bin OUT.bin [WAVE START STOP]"
                                                       : "usage: sim IN.bin OUT.bin");
    FILE* in = fopen(argv[1], "rb");
    if (!in) fail("cannot open input file");
    char magic[8];
    read_exact(in, magic, 8);
    if (memcmp(magic, "ACCVIN01", 8) != 0) fail("bad input file magic");
    uint64_t head[6];
    read_exact(in, head, sizeof head);
    const uint64_t n_words = head[0], n_valid = head[1], n_ready = head[2], max_cycles = head[3];
    const uint64_t n_record = head[5];
    std::vector<uint64_t> record(n_record + 1);
    read_exact(in, record.data(), n_record * 8);
    std::vector<uint32_t> words(n_words * IN_WORDS + 1);
    read_exact(in, words.data(), n_words * IN_WORDS * 4);
    std::vector<uint8_t> valid(n_valid + 1), ready(n_ready + 1);
    read_exact(in, valid.data(), n_valid);
    read_exact(in, ready.data(), n_ready);
    fclose(in);
    // Where each recorded signal's words start in the sample array.
    std::vector<uint64_t> record_at(n_record + 1), record_n(n_record + 1);
#if N_SIGNALS
    per_bit = head[4] != 0;
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2") && getenv("ACCEL_NO_AVX2") == nullptr;
    {
        std::vector<uint64_t> first(N_SIGNALS + 1, 0);
        for (size_t i = 0; i < N_SIGNALS; ++i) first[i + 1] = first[i] + signal_words[i];
        for (uint64_t j = 0; j < n_record; ++j) {
            if (record[j] >= N_SIGNALS) fail("record index out of range");
            record_at[j] = first[record[j]];
            record_n[j] = signal_words[record[j]];
        }
    }
#else
    if (n_record) fail("nothing to record: toggle counting is not compiled in");
#endif
    std::vector<uint32_t> recorded;

    std::vector<uint32_t> outputs;
    outputs.reserve(n_words * OUT_WORDS);
    uint32_t out_word[OUT_WORDS + 1];

    VerilatedContext* context = new VerilatedContext;
#if TRACE
    const bool tracing = argc == 6;
    const uint64_t trace_start = tracing ? strtoull(argv[4], nullptr, 10) : 0;
    const uint64_t trace_stop = tracing ? strtoull(argv[5], nullptr, 10) : 0;
    context->traceEverOn(tracing);  // before the model is built (time unit: 1 ns, a build flag)
#endif
    Vtop* top = new Vtop{context};
#if TRACE
    Trace* trace = nullptr;
    if (tracing) {
        trace = new Trace;
        top->trace(trace, 99);
        trace->open(argv[3]);
        if (!trace->isOpen()) fail("cannot open the waveform file");
    }
#endif
    top->clk = 0;
    top->rst = 0;
    top->/*@I_VALID@*/ = 0;
    top->/*@O_READY@*/ = 0;

    const auto start = std::chrono::steady_clock::now();
    uint64_t sent = 0, received = 0, samples = 0;
    int64_t last_cycle = -1;
    for (uint64_t cycle = 0; cycle < max_cycles; ++cycle) {
        if (received == n_words) break;
        const bool offering = sent < n_words && (cycle >= n_valid || valid[cycle]);
        top->/*@I_VALID@*/ = offering;
        if (offering) set_payload(top, &words[sent * IN_WORDS]);
        top->/*@O_READY@*/ = (cycle >= n_ready || ready[cycle]);
        top->clk = 0;
        top->eval();
#if TRACE
        const bool dumping = tracing && cycle >= trace_start && cycle < trace_stop;
        if (dumping) trace->dump(cycle * PERIOD_NS);
#endif
#if N_SIGNALS
        sample_toggles(top->rootp, samples);
        for (uint64_t j = 0; j < n_record; ++j)
            recorded.insert(recorded.end(), cur + record_at[j], cur + record_at[j] + record_n[j]);
        swap_samples();
#endif
        ++samples;
        if (offering && top->/*@I_READY@*/) ++sent;
        if (top->/*@O_VALID@*/ && top->/*@O_READY@*/) {
            get_payload(top, out_word);
            outputs.insert(outputs.end(), out_word, out_word + OUT_WORDS);
            ++received;
            last_cycle = (int64_t)cycle;
        }
        top->clk = 1;
        top->eval();
#if TRACE
        if (dumping) trace->dump(cycle * PERIOD_NS + PERIOD_NS / 2);
#endif
        context->timeInc(1);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    top->final();
#if TRACE
    if (trace) {
        trace->close();
        delete trace;
    }
#endif

    FILE* out = fopen(argv[2], "wb");
    if (!out) fail("cannot open output file");
    const uint64_t n_signals = N_SIGNALS;
    fwrite("ACCVOUT2", 1, 8, out);
    fwrite(&received, 8, 1, out);
    fwrite(&last_cycle, 8, 1, out);
    fwrite(&samples, 8, 1, out);
    fwrite(&n_signals, 8, 1, out);
    fwrite(&seconds, 8, 1, out);
    fwrite(outputs.data(), 4, outputs.size(), out);
#if N_SIGNALS
    flush_word_counts();
    std::vector<uint64_t> counts(N_SIGNALS, 0);
    for (size_t i = 0, k = 0; i < N_SIGNALS; ++i)
        for (uint32_t j = 0; j < signal_words[i]; ++j, ++k) counts[i] += word_totals[k];
    fwrite(counts.data(), 8, N_SIGNALS, out);
    fwrite(changes, 8, N_SIGNALS, out);
    if (per_bit) fwrite(bits, 8, 32 * STATE_WORDS, out);
    fwrite(recorded.data(), 4, recorded.size(), out);
#endif
    if (fclose(out) != 0) fail("cannot write output file");
    delete top;
    delete context;
    return 0;
}
