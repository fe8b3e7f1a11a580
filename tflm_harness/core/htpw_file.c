/* Whole-file CRC-32 check (htpw_file.h, docs/format.md section 7). */
#include "htpw_file.h"

#include <string.h>

#include "htpw_format.h"
#include "htpw_op.h"

/* Field ids of the TFLite schema (schema.fbs) this walk reads. */
#define MODEL_OPERATOR_CODES 1
#define MODEL_BUFFERS 4
#define MODEL_METADATA 6
#define OPERATOR_CODE_CUSTOM_CODE 1
#define METADATA_NAME 0
#define METADATA_BUFFER 1
#define BUFFER_DATA 0

/* A bounded reader: every position is checked against the file's length before it is read;
 * `bad` latches once any check fails, and every later read returns 0. */
typedef struct {
  const uint8_t* p;
  uint64_t n;
  int bad;
} reader;

static uint32_t u32(reader* r, uint64_t at) {
  if (r->bad || at + 4 > r->n) {
    r->bad = 1;
    return 0;
  }
  return (uint32_t)r->p[at] | (uint32_t)r->p[at + 1] << 8 | (uint32_t)r->p[at + 2] << 16 |
         (uint32_t)r->p[at + 3] << 24;
}

static uint32_t u16(reader* r, uint64_t at) {
  if (r->bad || at + 2 > r->n) {
    r->bad = 1;
    return 0;
  }
  return (uint32_t)r->p[at] | (uint32_t)r->p[at + 1] << 8;
}

/* Position of field `id` of the table at `table`, or 0 when the field is absent. */
static uint64_t field(reader* r, uint64_t table, uint32_t id) {
  const int64_t soffset = (int32_t)u32(r, table);
  const int64_t vtable = (int64_t)table - soffset;
  uint32_t vsize, off;
  if (r->bad || vtable < 0) {
    r->bad = 1;
    return 0;
  }
  vsize = u16(r, (uint64_t)vtable);
  if (r->bad || 4 + 2 * (uint64_t)id + 2 > vsize) return 0;
  off = u16(r, (uint64_t)vtable + 4 + 2 * (uint64_t)id);
  return off == 0 ? 0 : table + off;
}

/* Follows the uoffset at `at` (a table, vector or string reference). */
static uint64_t deref(reader* r, uint64_t at) {
  const uint64_t target = at + u32(r, at);
  if (!r->bad && target >= r->n) r->bad = 1;
  return r->bad ? 0 : target;
}

/* Vector at `vec`: element count, with all `count * width` bytes inside the file. */
static uint32_t vector_length(reader* r, uint64_t vec, uint32_t width) {
  const uint32_t count = u32(r, vec);
  if (!r->bad && vec + 4 + (uint64_t)count * width > r->n) r->bad = 1;
  return r->bad ? 0 : count;
}

/* 1 when the string field `at` (0 = absent) equals `text`. */
static int string_is(reader* r, uint64_t at, const char* text) {
  const uint64_t len = strlen(text);
  uint64_t s;
  if (at == 0) return 0;
  s = deref(r, at);
  return vector_length(r, s, 1) == len && memcmp(r->p + s + 4, text, (size_t)len) == 0;
}

/* Table `i` of the vector of tables at `vec` (whose length the caller checked). */
static uint64_t element(reader* r, uint64_t vec, uint32_t i) { return deref(r, vec + 4 + 4 * (uint64_t)i); }

static htpw_status find_crc(reader* r, uint64_t root, htpw_file_info* info) {
  const uint64_t metadata = field(r, root, MODEL_METADATA);
  const uint64_t buffers_field = field(r, root, MODEL_BUFFERS);
  uint64_t meta_vec, buffers = 0;
  uint32_t n_meta, n_buffers = 0, i;
  if (r->bad) return HTPW_ERR_FILE_FORMAT;
  if (metadata == 0) return HTPW_OK;
  meta_vec = deref(r, metadata);
  n_meta = vector_length(r, meta_vec, 4);
  if (buffers_field != 0) {
    buffers = deref(r, buffers_field);
    n_buffers = vector_length(r, buffers, 4);
  }
  for (i = 0; i < n_meta && !r->bad; ++i) {
    const uint64_t meta = element(r, meta_vec, i);
    uint64_t at, buffer, data;
    uint32_t index;
    if (!string_is(r, field(r, meta, METADATA_NAME), HTPW_METADATA_CRC32)) continue;
    if (info->has_crc) return HTPW_ERR_FILE_FORMAT; /* the entry twice */
    at = field(r, meta, METADATA_BUFFER);
    index = at == 0 ? 0 : u32(r, at);
    if (r->bad || index >= n_buffers) return HTPW_ERR_FILE_FORMAT;
    buffer = element(r, buffers, index);
    at = field(r, buffer, BUFFER_DATA);
    if (r->bad || at == 0) return HTPW_ERR_FILE_FORMAT;
    data = deref(r, at);
    if (vector_length(r, data, 1) != HTPW_METADATA_CRC32_BYTES || r->bad) return HTPW_ERR_FILE_FORMAT;
    info->has_crc = 1;
    info->crc_offset = (int32_t)(data + 4);
    info->stored_crc = u32(r, data + 4);
  }
  return r->bad ? HTPW_ERR_FILE_FORMAT : HTPW_OK;
}

static htpw_status count_hyper_ops(reader* r, uint64_t root, htpw_file_info* info) {
  const uint64_t codes_field = field(r, root, MODEL_OPERATOR_CODES);
  uint64_t codes;
  uint32_t n, i;
  if (r->bad) return HTPW_ERR_FILE_FORMAT;
  if (codes_field == 0) return HTPW_OK;
  codes = deref(r, codes_field);
  n = vector_length(r, codes, 4);
  for (i = 0; i < n && !r->bad; ++i) {
    info->hyper_ops += string_is(r, field(r, element(r, codes, i), OPERATOR_CODE_CUSTOM_CODE), HTPW_CUSTOM_OP_NAME);
  }
  return r->bad ? HTPW_ERR_FILE_FORMAT : HTPW_OK;
}

htpw_status htpw_file_check(const uint8_t* file, size_t bytes, htpw_file_info* info) {
  static const uint8_t kZero[HTPW_METADATA_CRC32_BYTES] = {0};
  htpw_file_info local;
  reader r;
  uint64_t root;
  htpw_status status;
  uint32_t crc;
  if (info == NULL) info = &local;
  memset(info, 0, sizeof(*info));
  info->crc_offset = -1;
  if (file == NULL) return HTPW_ERR_NULL;
  /* The CRC offset and htpw_crc32's lengths are int32: larger files are refused, not truncated. */
  if (bytes < 8 || bytes > (size_t)INT32_MAX) return HTPW_ERR_FILE_FORMAT;
  r.p = file;
  r.n = bytes;
  r.bad = 0;
  root = u32(&r, 0);
  if (root >= r.n) return HTPW_ERR_FILE_FORMAT;
  status = find_crc(&r, root, info);
  if (status == HTPW_OK) status = count_hyper_ops(&r, root, info);
  if (status != HTPW_OK) return status;
  if (!info->has_crc) return info->hyper_ops > 0 ? HTPW_ERR_FILE_NO_CRC : HTPW_OK;
  crc = htpw_crc32(0, file, info->crc_offset);
  crc = htpw_crc32(crc, kZero, HTPW_METADATA_CRC32_BYTES);
  crc = htpw_crc32(crc, file + info->crc_offset + HTPW_METADATA_CRC32_BYTES,
                   (int32_t)(bytes - (size_t)info->crc_offset - HTPW_METADATA_CRC32_BYTES));
  info->computed_crc = crc;
  return crc == info->stored_crc ? HTPW_OK : HTPW_ERR_FILE_CRC;
}
