// Messages a server (backend) sends, as views over a Frame's body.
// Lifetime: every string_view / Bytes borrows from the Frame's buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "protocol/byte_reader.h"

namespace pgs::protocol::backend {

#define PGS_BACKEND_MESSAGES(X)         \
  X(Authentication, 'R')                \
  X(BackendKeyData, 'K')                \
  X(ParameterStatus, 'S')               \
  X(ReadyForQuery, 'Z')                 \
  X(ErrorResponse, 'E')                 \
  X(NoticeResponse, 'N')                \
  X(RowDescription, 'T')                \
  X(DataRow, 'D')                       \
  X(CommandComplete, 'C')               \
  X(EmptyQueryResponse, 'I')            \
  X(ParseComplete, '1')                 \
  X(BindComplete, '2')                  \
  X(CloseComplete, '3')                 \
  X(NoData, 'n')                        \
  X(ParameterDescription, 't')          \
  X(PortalSuspended, 's')               \
  X(CopyInResponse, 'G')                \
  X(CopyOutResponse, 'H')               \
  X(CopyBothResponse, 'W')              \
  X(CopyData, 'd')                      \
  X(CopyDone, 'c')                      \
  X(NotificationResponse, 'A')          \
  X(FunctionCallResponse, 'V')          \
  X(NegotiateProtocolVersion, 'v')

enum class Type : char {
#define PGS_X(name, byte) name = byte,
  PGS_BACKEND_MESSAGES(PGS_X)
#undef PGS_X
};
const char* type_name(char type_byte);  // nullptr if unknown
bool is_known_type(char type_byte);

// Checks the layout of any typed backend message body (the decode of its view, or "empty" for
// the bodiless ones). Errc::unsupported for an unknown type byte.
Result<Unit> validate(char type_byte, Bytes body);

enum class AuthCode : int32_t {
  ok = 0,
  cleartext = 3,
  md5 = 5,
  sasl = 10,
  sasl_continue = 11,
  sasl_final = 12,
};

struct Authentication {
  int32_t code;  // AuthCode, or another value we do not support
  Bytes data;    // md5: 4-byte salt; sasl: mechanism list; continue/final: SCRAM message
  std::vector<std::string_view> mechanisms() const;  // for code 10
  static Result<Authentication> decode(Bytes body);
};

struct BackendKeyData {
  int32_t pid;
  int32_t secret;
  static Result<BackendKeyData> decode(Bytes body);
};

struct ParameterStatus {
  std::string_view name;
  std::string_view value;
  static Result<ParameterStatus> decode(Bytes body);
};

struct ReadyForQuery {
  char status;  // 'I' idle, 'T' in transaction, 'E' failed transaction
  static Result<ReadyForQuery> decode(Bytes body);
};

// ErrorResponse and NoticeResponse share the layout: (code byte, C string)* then 0.
// Unknown field codes are skipped, as the docs require of frontends.
struct ErrorFields {
  std::string_view severity;  // 'V' (never localized) if present, else 'S' (localized)
  std::string_view sqlstate;  // 'C'
  std::string_view message;   // 'M'
  std::string_view detail;    // 'D'
  std::string_view hint;      // 'H'
  static Result<ErrorFields> decode(Bytes body);
};

struct CommandComplete {
  std::string_view tag;  // "SELECT 3", "INSERT 0 1", ...
  static Result<CommandComplete> decode(Bytes body);
};

struct RowDescription {
  struct Field {
    std::string_view name;
    uint32_t table_oid;
    int16_t column;
    uint32_t type_oid;
    int16_t type_size;
    int32_t type_modifier;
    int16_t format;
  };
  std::vector<Field> fields;
  static Result<RowDescription> decode(Bytes body);
};

// DataRow is on the hot path: count only, values iterated on demand. decode() walks the column
// lengths once (no allocation) so a Cursor over a decoded row cannot fail.
struct DataRow {
  int16_t column_count;
  Bytes columns;  // the raw column region
  static Result<DataRow> decode(Bytes body);

  // Iterates the values of a DataRow obtained from decode(). std::nullopt value = SQL NULL.
  class Cursor {
   public:
    explicit Cursor(const DataRow& row) : reader_(row.columns), left_(row.column_count) {}
    // False when every column was read; otherwise stores the next value.
    bool next(std::optional<Bytes>& value);

   private:
    ByteReader reader_;
    int left_;
  };
};

struct NotificationResponse {
  int32_t pid;
  std::string_view channel;
  std::string_view payload;
  static Result<NotificationResponse> decode(Bytes body);
};

// ParameterDescription ('t'): the parameter type OIDs of a described statement.
struct ParameterDescription {
  std::vector<uint32_t> type_oids;
  static Result<ParameterDescription> decode(Bytes body);
};

// CopyInResponse ('G'), CopyOutResponse ('H') and CopyBothResponse ('W') share one layout.
struct CopyResponse {
  int8_t format;  // 0 text, 1 binary
  std::vector<int16_t> column_formats;
  static Result<CopyResponse> decode(Bytes body);
};

struct NegotiateProtocolVersion {
  int32_t newest_minor;
  std::vector<std::string_view> unrecognized;
  static Result<NegotiateProtocolVersion> decode(Bytes body);
};

}  // namespace pgs::protocol::backend
