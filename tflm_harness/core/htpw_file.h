/* The whole-file integrity check of docs/format.md section 7, for every runner (host, Cortex-M4,
 * Arduino): before the interpreter is built, the file CRC-32 in the metadata entry
 * HTPW_METADATA_CRC32 is compared with the file's bytes.
 *
 * C99, no heap, no flatbuffers headers: the few tables it reads (Model.metadata, Metadata,
 * Buffer, Model.operator_codes, OperatorCode) are walked with every offset bounds-checked
 * against `bytes`, so a corrupted file cannot make it read outside the file; it runs before
 * (and without) flatbuffers' Verifier.
 */
#ifndef HTPW_FILE_H_
#define HTPW_FILE_H_

#include <stddef.h>
#include <stdint.h>

#include "htpw_synthesis.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What htpw_file_check found, for reports (the status alone decides). */
typedef struct {
  int32_t has_crc;       /* 1: the file has the HTPW_METADATA_CRC32 entry */
  int32_t crc_offset;    /* where its 4 bytes sit in the file (-1 without one) */
  int32_t hyper_ops;     /* operator codes (not ops) whose custom_code is HTPW_CUSTOM_OP_NAME */
  uint32_t stored_crc;   /* the entry's value */
  uint32_t computed_crc; /* the file's CRC-32 with those 4 bytes read as zero */
} htpw_file_info;

/* HTPW_OK when the file's CRC entry matches its bytes, or when it has none and no HyperTinyPW op
 * (a folded or stock file: nothing to check). Otherwise:
 *   HTPW_ERR_FILE_FORMAT  an offset the walk follows leaves the file, the entry is not 4 bytes of
 *                         an in-file buffer, or it appears twice
 *   HTPW_ERR_FILE_CRC     the stored CRC-32 differs from the file's
 *   HTPW_ERR_FILE_NO_CRC  the file has a HyperTinyPW operator code but no CRC entry
 * `info` may be NULL. Cost: one CRC-32 pass over the file plus a walk of the metadata and
 * operator-code tables. */
htpw_status htpw_file_check(const uint8_t* file, size_t bytes, htpw_file_info* info);

#ifdef __cplusplus
}
#endif

#endif /* HTPW_FILE_H_ */
