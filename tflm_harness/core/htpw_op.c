/* The HyperTinyPW op's checks and entry points; see htpw_op.h and docs/format.md. */
#include "htpw_op.h"

#include <stddef.h>
#include <string.h>

#include "htpw_strategy.h"

/* One record per strategy, indexed by htpw_strategy_id (htpw_strategy.h): a new strategy is its
 * file, its id in htpw_op.h and one entry here. */
static const htpw_strategy* const kStrategies[HTPW_STRATEGY_COUNT] = {
    &htpw_strategy_tiled,
    &htpw_strategy_paper_dense,
    &htpw_strategy_paper_factorized,
    &htpw_strategy_low_rank,
};

/* The record of options that passed htpw_options_validate. */
static const htpw_strategy* strategy_of(const htpw_options* o) { return kStrategies[o->strategy]; }

#define HTPW_STATUS_COUNT 35

static const char* const kStatusNames[HTPW_STATUS_COUNT] = {
    "HTPW_OK",
    "HTPW_ERR_NULL",
    "HTPW_ERR_DIMENSION",
    "HTPW_ERR_BITS",
    "HTPW_ERR_SHIFT",
    "HTPW_ERR_MULTIPLIER",
    "HTPW_ERR_SCRATCH",
    "HTPW_ERR_HEAD",
    "HTPW_ERR_CRC",
    "HTPW_ERR_INPUT_COUNT",
    "HTPW_ERR_INPUT_TYPE",
    "HTPW_ERR_INPUT_SHAPE",
    "HTPW_ERR_INPUT_BYTES",
    "HTPW_ERR_OPTION_MISSING",
    "HTPW_ERR_OPTION_TYPE",
    "HTPW_ERR_OPTION_UNKNOWN",
    "HTPW_ERR_OPTION_VERSION",
    "HTPW_ERR_OPTION_MODE",
    "HTPW_ERR_OPTION_STRATEGY",
    "HTPW_ERR_OPTION_C_OUT",
    "HTPW_ERR_OPTION_C_IN",
    "HTPW_ERR_OPTION_CODE_DIM",
    "HTPW_ERR_OPTION_HIDDEN_DIM",
    "HTPW_ERR_OPTION_TILE_SIZE",
    "HTPW_ERR_OPTION_CODE_BITS",
    "HTPW_ERR_OPTION_WEIGHT_BITS",
    "HTPW_ERR_OPTION_CRC32",
    "HTPW_ERR_OPTIONS_FORMAT",
    "HTPW_ERR_OUTPUT",
    "HTPW_ERR_SIZE",
    "HTPW_ERR_ALIGN",
    "HTPW_ERR_INPUT_CONSTANT",
    "HTPW_ERR_FILE_FORMAT",
    "HTPW_ERR_FILE_CRC",
    "HTPW_ERR_FILE_NO_CRC",
};

const char* htpw_status_name(htpw_status s) {
  const unsigned value = (unsigned)s; /* enums may be unsigned or short (AAPCS) */
  if (value >= (unsigned)HTPW_STATUS_COUNT) return "HTPW_ERR_UNKNOWN_STATUS";
  return kStatusNames[value];
}

/* ---- options -------------------------------------------------------------------------- */

static const char* const kKeys[HTPW_OPTION_COUNT] = {
    HTPW_KEY_VERSION, HTPW_KEY_MODE,       HTPW_KEY_STRATEGY,  HTPW_KEY_C_OUT,
    HTPW_KEY_C_IN,    HTPW_KEY_CODE_DIM,   HTPW_KEY_HIDDEN_DIM, HTPW_KEY_TILE_SIZE,
    HTPW_KEY_CODE_BITS, HTPW_KEY_WEIGHT_BITS, HTPW_KEY_CRC32,
};

/* The status of a bad value, per option (same order as htpw_option_id). */
static const htpw_status kRangeStatus[HTPW_OPTION_COUNT] = {
    HTPW_ERR_OPTION_VERSION,    HTPW_ERR_OPTION_MODE,       HTPW_ERR_OPTION_STRATEGY,
    HTPW_ERR_OPTION_C_OUT,      HTPW_ERR_OPTION_C_IN,       HTPW_ERR_OPTION_CODE_DIM,
    HTPW_ERR_OPTION_HIDDEN_DIM, HTPW_ERR_OPTION_TILE_SIZE,  HTPW_ERR_OPTION_CODE_BITS,
    HTPW_ERR_OPTION_WEIGHT_BITS, HTPW_ERR_OPTION_CRC32,
};

static int equals(const char* s, int32_t len, const char* literal) {
  const size_t n = strlen(literal);
  return s != NULL && len >= 0 && (size_t)len == n && memcmp(s, literal, n) == 0;
}

htpw_status htpw_option_from_key(const char* s, int32_t len, htpw_option_id* out) {
  int i;
  if (out == NULL) return HTPW_ERR_NULL;
  for (i = 0; i < HTPW_OPTION_COUNT; ++i) {
    if (equals(s, len, kKeys[i])) {
      *out = (htpw_option_id)i;
      return HTPW_OK;
    }
  }
  return HTPW_ERR_OPTION_UNKNOWN;
}

int htpw_option_is_string(htpw_option_id id) { return id == HTPW_OPTION_MODE || id == HTPW_OPTION_STRATEGY; }

htpw_status htpw_options_set_int(htpw_options* o, htpw_option_id id, int64_t value) {
  int32_t v;
  if (o == NULL) return HTPW_ERR_NULL;
  if ((unsigned)id >= (unsigned)HTPW_OPTION_COUNT) return HTPW_ERR_OPTION_UNKNOWN;
  if (htpw_option_is_string(id)) return HTPW_ERR_OPTION_TYPE;
  if (id == HTPW_OPTION_CRC32) {
    if (value < 0 || value > (int64_t)UINT32_MAX) return HTPW_ERR_OPTION_CRC32;
    o->crc32 = (uint32_t)value;
    return HTPW_OK;
  }
  if (value < INT32_MIN || value > INT32_MAX) return kRangeStatus[id];
  v = (int32_t)value;
  switch (id) {
    case HTPW_OPTION_VERSION: o->version = v; break;
    case HTPW_OPTION_C_OUT: o->c_out = v; break;
    case HTPW_OPTION_C_IN: o->c_in = v; break;
    case HTPW_OPTION_CODE_DIM: o->code_dim = v; break;
    case HTPW_OPTION_HIDDEN_DIM: o->hidden_dim = v; break;
    case HTPW_OPTION_TILE_SIZE: o->tile_size = v; break;
    case HTPW_OPTION_CODE_BITS: o->code_bits = v; break;
    case HTPW_OPTION_WEIGHT_BITS: o->weight_bits = v; break;
    default: return HTPW_ERR_OPTION_UNKNOWN;
  }
  return HTPW_OK;
}

htpw_status htpw_mode_from_string(const char* s, int32_t len, htpw_mode_id* out) {
  if (out == NULL) return HTPW_ERR_NULL;
  if (equals(s, len, HTPW_MODE_BOOT)) {
    *out = HTPW_MODE_ID_BOOT;
  } else if (equals(s, len, HTPW_MODE_LAZY)) {
    *out = HTPW_MODE_ID_LAZY;
  } else if (equals(s, len, HTPW_MODE_STREAM)) {
    *out = HTPW_MODE_ID_STREAM;
  } else {
    return HTPW_ERR_OPTION_MODE;
  }
  return HTPW_OK;
}

htpw_status htpw_strategy_from_string(const char* s, int32_t len, htpw_strategy_id* out) {
  int i;
  if (out == NULL) return HTPW_ERR_NULL;
  for (i = 0; i < HTPW_STRATEGY_COUNT; ++i) {
    if (equals(s, len, kStrategies[i]->name)) {
      *out = (htpw_strategy_id)i;
      return HTPW_OK;
    }
  }
  return HTPW_ERR_OPTION_STRATEGY;
}

static int in_range(int32_t v, int32_t lo, int32_t hi) { return v >= lo && v <= hi; }

/* Same order as export/format.py's _validate, so both name the same first bad option. */
htpw_status htpw_options_validate(const htpw_options* o) {
  const htpw_strategy* s;
  htpw_status status;
  if (o == NULL) return HTPW_ERR_NULL;
  if (o->version != HTPW_FORMAT_VERSION) return HTPW_ERR_OPTION_VERSION;
  if (!in_range((int32_t)o->mode, HTPW_MODE_ID_BOOT, HTPW_MODE_ID_STREAM)) return HTPW_ERR_OPTION_MODE;
  if (!in_range((int32_t)o->strategy, 0, HTPW_STRATEGY_COUNT - 1)) return HTPW_ERR_OPTION_STRATEGY;
  s = strategy_of(o);
  if (!in_range(o->c_out, 1, HTPW_MAX_DIM)) return HTPW_ERR_OPTION_C_OUT;
  if (!in_range(o->c_in, 1, HTPW_MAX_DIM)) return HTPW_ERR_OPTION_C_IN;
  if (!in_range(o->code_dim, 1, HTPW_MAX_DIM)) return HTPW_ERR_OPTION_CODE_DIM;
  if (!in_range(o->hidden_dim, 1, HTPW_MAX_DIM)) return HTPW_ERR_OPTION_HIDDEN_DIM;
  if (s->check_options != NULL && (status = s->check_options(o)) != HTPW_OK) return status;
  if (o->code_bits != 4 && o->code_bits != 8) return HTPW_ERR_OPTION_CODE_BITS;
  if (o->weight_bits != 4 && o->weight_bits != 8) return HTPW_ERR_OPTION_WEIGHT_BITS;
  if (s->max_tile_size > 0 ? !in_range(o->tile_size, 1, s->max_tile_size) : o->tile_size != 0) {
    return HTPW_ERR_OPTION_TILE_SIZE;
  }
  return HTPW_OK;
}

htpw_status htpw_op_kernel_bytes(const htpw_options* o, int32_t* bytes) {
  htpw_status status;
  int64_t n;
  if (bytes == NULL) return HTPW_ERR_NULL;
  if ((status = htpw_options_validate(o)) != HTPW_OK) return status;
  n = (int64_t)o->c_out * o->c_in;
  if (n > INT32_MAX) return HTPW_ERR_SIZE;
  *bytes = (int32_t)n;
  return HTPW_OK;
}

/* ---- inputs (docs/format.md section 2) ------------------------------------------------ */

htpw_input_spec htpw_spec(htpw_type type, int32_t rank, int64_t d0, int64_t d1) {
  htpw_input_spec s;
  s.type = type;
  s.rank = rank;
  s.dims[0] = d0;
  s.dims[1] = d1;
  s.last_at_least = 0;
  return s;
}

htpw_type htpw_code_type(const htpw_options* o) { return o->code_bits == 4 ? HTPW_TYPE_INT4 : HTPW_TYPE_INT8; }

htpw_type htpw_weight_type(const htpw_options* o) { return o->weight_bits == 4 ? HTPW_TYPE_INT4 : HTPW_TYPE_INT8; }

htpw_input_spec htpw_mlp_input_spec(const htpw_options* o, int32_t index) {
  if (index == HTPW_TILED_INPUT_W1) return htpw_spec(htpw_weight_type(o), 2, o->code_dim, o->hidden_dim);
  return htpw_spec(HTPW_TYPE_INT32, 1, o->hidden_dim, 0); /* b1 */
}

htpw_input_spec htpw_requant_spec(void) { return htpw_spec(HTPW_TYPE_INT32, 1, 2, 0); }

htpw_input_spec htpw_signs_spec(const htpw_options* o) {
  return htpw_spec(HTPW_TYPE_UINT8, 1, ((int64_t)o->c_out + 7) / 8, 0);
}

static htpw_status check_input(const htpw_input_spec* s, const htpw_input* in) {
  int64_t count = 1, needed;
  int32_t d;
  if (in->data == NULL) return HTPW_ERR_INPUT_CONSTANT;
  if (in->type != s->type) return HTPW_ERR_INPUT_TYPE;
  if (in->rank != s->rank) return HTPW_ERR_INPUT_SHAPE;
  for (d = 0; d < s->rank; ++d) {
    const int last = d == s->rank - 1;
    if (in->dims[d] < 0) return HTPW_ERR_INPUT_SHAPE;
    if (last && s->last_at_least ? in->dims[d] < s->dims[d] : in->dims[d] != s->dims[d]) {
      return HTPW_ERR_INPUT_SHAPE;
    }
    count *= in->dims[d]; /* each factor <= INT32_MAX, rank <= 2: no overflow */
  }
  if (s->type == HTPW_TYPE_INT4) {
    needed = (count + 1) / 2;
  } else if (s->type == HTPW_TYPE_INT32) {
    needed = 4 * count;
  } else {
    needed = count;
  }
  if ((int64_t)in->bytes != needed) return HTPW_ERR_INPUT_BYTES;
  return HTPW_OK;
}

static htpw_status check_requant(const htpw_input* in, htpw_requant* out) {
  out->multiplier = htpw_read_i32(in->data, 0);
  out->shift = htpw_read_i32(in->data, 1);
  return htpw_validate_requant(out);
}

static htpw_status validate(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs, int check_crc,
                            int32_t* failed_input) {
  htpw_status status;
  int32_t i, kernel_bytes;
  htpw_requant requant;
  *failed_input = -1;
  if ((status = htpw_op_kernel_bytes(o, &kernel_bytes)) != HTPW_OK) return status;
  if (inputs == NULL && n_inputs != 0) return HTPW_ERR_NULL;
  if (n_inputs != strategy_of(o)->n_inputs) return HTPW_ERR_INPUT_COUNT;
  for (i = 0; i < n_inputs; ++i) {
    const htpw_input_spec s = strategy_of(o)->input_spec(o, i);
    *failed_input = i;
    if ((status = check_input(&s, &inputs[i])) != HTPW_OK) return status;
  }
  *failed_input = strategy_of(o)->requant_input;
  if (*failed_input >= 0 && (status = check_requant(&inputs[*failed_input], &requant)) != HTPW_OK) return status;
  *failed_input = -1;
  if (check_crc) {
    uint32_t crc = 0;
    for (i = 0; i < n_inputs; ++i) crc = htpw_crc32(crc, inputs[i].data, inputs[i].bytes);
    if (crc != o->crc32) return HTPW_ERR_CRC;
  }
  return HTPW_OK;
}

htpw_status htpw_op_validate_at(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs,
                                int32_t* failed_input) {
  int32_t ignored;
  return validate(o, inputs, n_inputs, 1, failed_input ? failed_input : &ignored);
}

htpw_status htpw_op_validate(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs) {
  return htpw_op_validate_at(o, inputs, n_inputs, NULL);
}

/* ---- synthesis ------------------------------------------------------------------------ */

htpw_tensor htpw_tensor_of(const htpw_input* in) {
  htpw_tensor t;
  t.data = in->data;
  t.bytes = in->bytes;
  t.bits = in->type == HTPW_TYPE_INT4 ? 4 : 8;
  return t;
}

htpw_mlp htpw_mlp_of(const htpw_options* o, const htpw_input* inputs) {
  htpw_mlp mlp;
  memset(&mlp, 0, sizeof(mlp));
  mlp.code_dim = o->code_dim;
  mlp.hidden_dim = o->hidden_dim;
  if (inputs != NULL) {
    mlp.w1 = htpw_tensor_of(&inputs[HTPW_TILED_INPUT_W1]);
    mlp.b1 = inputs[HTPW_TILED_INPUT_B1].data;
    mlp.b1_bytes = inputs[HTPW_TILED_INPUT_B1].bytes;
  }
  return mlp;
}

static htpw_status scratch_of(const htpw_options* o, int32_t* bytes) {
  const int32_t n = strategy_of(o)->scratch_bytes(o);
  if (n < 0) return HTPW_ERR_SIZE;
  *bytes = n;
  return HTPW_OK;
}

htpw_status htpw_op_scratch_bytes(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs,
                                  int32_t* bytes) {
  htpw_status status;
  int32_t kernel_bytes;
  (void)inputs; /* the scratch depends on the options alone */
  (void)n_inputs;
  if (bytes == NULL) return HTPW_ERR_NULL;
  if ((status = htpw_op_kernel_bytes(o, &kernel_bytes)) != HTPW_OK) return status;
  return scratch_of(o, bytes);
}

htpw_status htpw_op_synthesize(const htpw_options* o, const htpw_input* inputs, int32_t n_inputs,
                               void* scratch, int32_t scratch_bytes, int8_t* kernel, int32_t kernel_bytes) {
  htpw_status status;
  int32_t failed, needed_kernel = 0, needed_scratch = 0;
  htpw_requant requant;
  htpw_signs signs;
  const htpw_strategy* s;
  if ((status = validate(o, inputs, n_inputs, 0, &failed)) != HTPW_OK) return status;
  (void)htpw_op_kernel_bytes(o, &needed_kernel);
  if (kernel == NULL) return HTPW_ERR_NULL;
  if (kernel_bytes != needed_kernel) return HTPW_ERR_OUTPUT;
  if (scratch == NULL) return HTPW_ERR_NULL;
  if (((uintptr_t)scratch & 3u) != 0) return HTPW_ERR_ALIGN;
  if ((status = scratch_of(o, &needed_scratch)) != HTPW_OK) return status;
  if (scratch_bytes < needed_scratch) return HTPW_ERR_SCRATCH;
  s = strategy_of(o);
  signs.data = (const uint8_t*)inputs[n_inputs - 1].data;
  signs.bytes = inputs[n_inputs - 1].bytes;
  if (s->requant_input >= 0) (void)check_requant(&inputs[s->requant_input], &requant);
  return s->synthesize(o, inputs, s->requant_input >= 0 ? &requant : NULL, &signs, scratch, scratch_bytes, kernel);
}

/* ---- CRC-32 --------------------------------------------------------------------------- */

/* Reflected IEEE 802.3 polynomial 0xEDB88320, four bits at a time: a 64-byte table instead of
 * zlib's 1 KB one, still about ten instructions per byte. */
static const uint32_t kCrcNibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t htpw_crc32(uint32_t crc, const void* data, int32_t bytes) {
  const uint8_t* p = (const uint8_t*)data;
  int32_t i;
  if (p == NULL || bytes <= 0) return crc;
  crc = ~crc;
  for (i = 0; i < bytes; ++i) {
    crc = (crc >> 4) ^ kCrcNibble[(crc ^ p[i]) & 15u];
    crc = (crc >> 4) ^ kCrcNibble[(crc ^ ((uint32_t)p[i] >> 4)) & 15u];
  }
  return ~crc;
}
