// Messages a client (frontend) sends, as views over a Frame's body.
// Lifetime: every string_view / Bytes borrows from the Frame's buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "protocol/byte_reader.h"
#include "protocol/frame.h"

namespace pgs::protocol::frontend {

// The list of typed frontend messages, written once: X(Name, 'byte').
#define PGS_FRONTEND_MESSAGES(X) \
  X(Query, 'Q')                  \
  X(Parse, 'P')                  \
  X(Bind, 'B')                   \
  X(Describe, 'D')               \
  X(Execute, 'E')                \
  X(Close, 'C')                  \
  X(Sync, 'S')                   \
  X(Flush, 'H')                  \
  X(Terminate, 'X')              \
  X(CopyData, 'd')               \
  X(CopyDone, 'c')               \
  X(CopyFail, 'f')               \
  X(FunctionCall, 'F')           \
  X(PasswordMessage, 'p') /* also SASLInitialResponse / SASLResponse: state decides */

enum class Type : char {
#define PGS_X(name, byte) name = byte,
  PGS_FRONTEND_MESSAGES(PGS_X)
#undef PGS_X
};
// "Query", "Parse", ... or nullptr for an unknown byte.
const char* type_name(char type_byte);
bool is_known_type(char type_byte);

// Why a client message of a known type cannot be what it says, or nullptr when it can: Sync, Flush,
// CopyDone and Terminate carry no body; Execute and CopyFail decode with no trailing bytes (`streamed`
// counts body bytes not buffered yet). The server would reject such a message too, but its answers to a
// broken Sync or Flush do not follow the message flow a pooler counts replies by (an ErrorResponse and a
// ReadyForQuery that answer no Sync), so the proxy refuses them before they reach a server. Query, Parse,
// Describe and Close are decoded once where the proxy forwards them (a failed decode is refused there);
// Bind and FunctionCall are left to the server (their errors keep the flow).
const char* malformed_reason(char type_byte, Bytes body, size_t streamed);

// Startup message (protocol 3.0): name/value pairs, terminated by an empty name.
// decode() accepts any 3.x version: for a minor above 0, or any "_pq_." option, the proxy answers
// NegotiateProtocolVersion(0, protocol_options()) and carries on in 3.0 (docs "Protocol versions").
struct Startup {
  uint32_t protocol_version;
  std::vector<std::pair<std::string_view, std::string_view>> params;
  std::string_view get(std::string_view name) const;  // "" if absent; the last one if repeated
  uint16_t minor_version() const { return static_cast<uint16_t>(protocol_version & 0xffff); }
  // Names of the "_pq_.*" protocol options the client asked for (we implement none).
  std::vector<std::string_view> protocol_options() const;
  bool needs_negotiation() const { return minor_version() != 0 || !protocol_options().empty(); }
  static Result<Startup> decode(const StartupFrame& f);
};

struct CancelRequest {
  int32_t pid;
  int32_t secret;
  static Result<CancelRequest> decode(const StartupFrame& f);
};

struct Query {
  std::string_view sql;
  static Result<Query> decode(Bytes body);
};

// Read in place: the parameter types stay in their wire block (checked against its count by decode).
struct Parse {
  std::string_view name;  // "" = unnamed statement
  std::string_view sql;
  Bytes param_type_block;  // Int16 count, then that many Int32 OIDs (0 = unspecified)
  uint16_t param_count() const;
  uint32_t param_type(size_t i) const;  // i < param_count()
  std::vector<uint32_t> param_types() const;  // allocates: for a statement the proxy keeps
  static Result<Parse> decode(Bytes body);
  // The statement name alone, from the first bytes of a Parse not all buffered (a streamed one).
  static Result<std::string_view> decode_name(Bytes head);
};

// Bind read in place, without allocating: the two names a pooler rewrites, and the rest as it came.
// Only the names are checked (the server checks the rest, and its error keeps the message flow), so
// it also reads the head of a Bind whose values are still streaming in. BindArgs::decode(rest) reads
// the rest of a Bind whose body is all buffered.
struct BindView {
  std::string_view portal;
  std::string_view statement;
  Bytes rest;  // parameter formats, values and result formats: forwarded unchanged, keyed by the cache
  static Result<BindView> decode(Bytes body);
};

// Format codes as Bind and FunctionCall send them (docs "Message Formats"): an Int16 count (read
// unsigned, as the server does), then that many Int16 codes, each 0 (text) or 1 (binary). Read in
// place; the decode that produced it checked every code.
struct FormatCodes {
  Bytes codes;         // `count` Int16 codes, without their count
  uint16_t count = 0;
  int16_t at(size_t i) const;  // i < count
  // The format of value i under the server's rule: no code = all text, one code = the same for all,
  // else one code per value (the decode checked that the count is 0, 1 or the number of values).
  int16_t for_value(size_t i) const;
};

// Argument values as Bind and FunctionCall send them: an Int16 count (unsigned: at most 65535), then
// per value an Int32 length (-1 = NULL) and that many bytes. Read in place; the decode that produced
// it checked every length against the body, so a Cursor over it cannot read out of bounds.
struct ValueList {
  Bytes block;         // the count and every value, as sent
  uint16_t count = 0;

  // Walks the values in order. std::nullopt = NULL.
  class Cursor {
   public:
    explicit Cursor(const ValueList& values);
    // False when every value was read; otherwise stores the next one.
    bool next(std::optional<Bytes>& value);

   private:
    ByteReader reader_;
    uint16_t left_;
  };
};

// What follows a Bind's names (BindView::rest), decoded and checked once without allocating: the
// codes are 0 or 1, the parameter format count is 0, 1 or the value count, every value length is -1
// or within the body, and nothing trails the result formats. A refusal is Errc::truncated (a count or
// a length beyond the body) or Errc::malformed (a code, a length below -1, a format count, trailing
// bytes); the server refuses these Binds too (a code other than 0 or 1 once it applies to a value or
// a column).
struct BindArgs {
  FormatCodes param_formats;
  ValueList values;
  FormatCodes result_formats;  // none = all text, one = for every column, else one per column
  static Result<BindArgs> decode(Bytes rest);
};

// Bind decoded and checked whole (for validation and for reading its values), without allocating.
struct Bind {
  std::string_view portal;
  std::string_view statement;
  BindArgs args;
  static Result<Bind> decode(Bytes body);
};

struct Describe {
  char kind;  // 'S' statement or 'P' portal
  std::string_view name;
  static Result<Describe> decode(Bytes body);
};

struct Execute {
  std::string_view portal;
  int32_t max_rows;  // 0 = no limit
  static Result<Execute> decode(Bytes body);
};

struct Close {
  char kind;  // 'S' or 'P'
  std::string_view name;
  static Result<Close> decode(Bytes body);
};

struct CopyFail {
  std::string_view message;
  static Result<CopyFail> decode(Bytes body);
};

// SASLInitialResponse: mechanism name, then Int32 length (-1 = none) and data.
struct SaslInitialResponse {
  std::string_view mechanism;
  std::string_view data;
  static Result<SaslInitialResponse> decode(Bytes body);
};
// SASLResponse: the whole body is data.
struct SaslResponse {
  std::string_view data;
  static Result<SaslResponse> decode(Bytes body);
};
// PasswordMessage (cleartext or md5): a C string.
struct PasswordMessage {
  std::string_view password;
  static Result<PasswordMessage> decode(Bytes body);
};

// FunctionCall ('F', libpq's large-object API): passed through; decoded to validate its layout.
// Its arguments follow Bind's rules (FormatCodes, ValueList).
struct FunctionCall {
  uint32_t function_oid;
  FormatCodes arg_formats;
  ValueList args;
  int16_t result_format;
  static Result<FunctionCall> decode(Bytes body);
};

// A message of the pooled session, decoded once where it is read: the frame and the view of its type,
// which every part of the proxy then reads (routing, prepared statements, session tracking, the cache).
// Query, Parse, Bind (its names), Describe, Close and Execute have a view; other types carry none. A
// streamed message (body not all buffered, Frame::streamed > 0) carries what its head holds: a Bind's
// BindView, a Parse's name (ParseName); a Query none.
struct ParseName {
  std::string_view name;
};
struct Message {
  Frame frame;
  std::variant<std::monostate, Query, Parse, ParseName, BindView, Describe, Close, Execute> view;
  char type() const { return frame.type; }
  template <typename T>
  const T* as() const { return std::get_if<T>(&view); }
};
// Errc::malformed when the view of a known type does not decode (the caller names the message type
// in its 08P01: type_name()).
Result<Message> decode_message(const Frame& f);

// Checks the layout of any typed frontend message body (the decode of its view, or "empty" for
// Sync/Flush/Terminate/CopyDone). Errc::unsupported for an unknown type byte. 'p' is only checked
// to be non-empty: which of its three layouts applies is decided by the authentication state.
Result<Unit> validate(char type_byte, Bytes body);

}  // namespace pgs::protocol::frontend
