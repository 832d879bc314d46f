// Stream harness for a Verilated accel component (template; filled in by accel/sim/verilator.py).
//
// Usage: sim IN.bin OUT.bin
// IN.bin : "ACCVIN01", u64 n_words, u64 n_valid, u64 n_ready, u64 max_cycles, u64 per_bit, u64 n_record,
//          n_record x u64 (indices of counted signals whose value to record each cycle),
//          n_words x IN_WORDS u32 (payload words, little-endian 32-bit chunks),
//          n_valid bytes (i.valid pattern), n_ready bytes (o.ready pattern).
// OUT.bin: "ACCVOUT1", u64 n_out, i64 last_cycle, u64 samples, u64 n_signals,
//          n_out x OUT_WORDS u32 (output payload words),
//          n_signals x u64 toggle counts, [per_bit] 32 x STATE_WORDS u64 per-bit counts,
//          [n_record] samples x (the recorded signals' words, u32) .
//
// Cycle loop (the contract of accel/sim/pysim.py run_stream): stop once every input has come out;
// otherwise drive i.valid (and i.payload when offering; it holds its value otherwise) and o.ready from
// the patterns (true past their end), settle, sample toggles, record the handshakes, clock.
// Toggles (accel/sim/toggles.py): per bit, settled values sampled once per clock before the rising
// edge; the first sample only sets the reference.

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define N_SIGNALS /*@N_SIGNALS@*/
#define STATE_WORDS /*@STATE_WORDS@*/
static const size_t IN_WORDS = /*@IN_WORDS@*/;
static const size_t OUT_WORDS = /*@OUT_WORDS@*/;

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
static const uint32_t signal_words[N_SIGNALS] = {/*@SIGNAL_WORDS@*/};
static uint32_t prev[STATE_WORDS];
static uint64_t counts[N_SIGNALS];
static uint64_t bits[32 * STATE_WORDS];
static bool per_bit = false;

// One 32-bit word of signal I (state word W) sampled with value V.
#define TOGGLE(I, W, V)                                                        \
    do {                                                                       \
        const uint32_t v_ = (V);                                               \
        uint32_t x_ = v_ ^ prev[W];                                            \
        prev[W] = v_;                                                          \
        counts[I] += __builtin_popcount(x_);                                   \
        if (per_bit)                                                           \
            for (; x_; x_ &= x_ - 1) ++bits[32 * (W) + __builtin_ctz(x_)];     \
    } while (0)

static void count_toggles(const Vtop___024root* r) {
/*@COUNT_TOGGLES@*/
}
#endif

int main(int argc, char** argv) {
    if (argc != 3) fail("usage: sim IN.bin OUT.bin");
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
    // Where each recorded signal's words start in prev[].
    std::vector<uint64_t> record_at(n_record + 1), record_n(n_record + 1);
#if N_SIGNALS
    per_bit = head[4] != 0;
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
    Vtop* top = new Vtop{context};
    top->clk = 0;
    top->rst = 0;
    top->/*@I_VALID@*/ = 0;
    top->/*@O_READY@*/ = 0;

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
#if N_SIGNALS
        count_toggles(top->rootp);
        if (samples == 0) {  // the first sample only sets the reference
            memset(counts, 0, sizeof counts);
            memset(bits, 0, sizeof bits);
        }
        for (uint64_t j = 0; j < n_record; ++j)
            recorded.insert(recorded.end(), prev + record_at[j], prev + record_at[j] + record_n[j]);
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
        context->timeInc(1);
    }
    top->final();

    FILE* out = fopen(argv[2], "wb");
    if (!out) fail("cannot open output file");
    const uint64_t n_signals = N_SIGNALS;
    fwrite("ACCVOUT1", 1, 8, out);
    fwrite(&received, 8, 1, out);
    fwrite(&last_cycle, 8, 1, out);
    fwrite(&samples, 8, 1, out);
    fwrite(&n_signals, 8, 1, out);
    fwrite(outputs.data(), 4, outputs.size(), out);
#if N_SIGNALS
    fwrite(counts, 8, N_SIGNALS, out);
    if (per_bit) fwrite(bits, 8, 32 * STATE_WORDS, out);
    fwrite(recorded.data(), 4, recorded.size(), out);
#endif
    if (fclose(out) != 0) fail("cannot write output file");
    delete top;
    delete context;
    return 0;
}
