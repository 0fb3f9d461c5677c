// split_startup and the startup-phase packets (docs "Message Flow / Start-up").
#include "protocol/frame.h"
#include "protocol/frontend.h"
#include "protocol/writer.h"
#include "tests/protocol/test_util.h"

namespace pgs::protocol {
namespace {

using test::be32;
using test::bytes_of;
using test::only_startup;
using test::S;

std::string packet(uint32_t code, std::string_view body) {
  return be32(static_cast<uint32_t>(body.size() + 8)) + be32(code) + std::string(body);
}

TEST(SplitStartup, SslRequest) {
  const std::string wire = packet(kSslRequestCode, "");
  StartupFrame f = only_startup(wire);
  EXPECT_EQ(f.code, kSslRequestCode);
  EXPECT_TRUE(f.body.empty());
  EXPECT_EQ(f.size, 8u);
}

TEST(SplitStartup, GssEncRequest) {
  const std::string wire = packet(kGssEncRequestCode, "");
  StartupFrame f = only_startup(wire);
  EXPECT_EQ(f.code, kGssEncRequestCode);
  // Neither is a StartupMessage.
  EXPECT_FALSE(frontend::Startup::decode(f).ok());
}

TEST(SplitStartup, CancelRequestRoundTrip) {
  std::string wire;
  write_cancel_request(wire, 4242, -7);
  ASSERT_EQ(wire.size(), 16u);
  StartupFrame f = only_startup(wire);
  EXPECT_EQ(f.code, kCancelRequestCode);
  auto c = frontend::CancelRequest::decode(f);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->pid, 4242);
  EXPECT_EQ(c->secret, -7);
}

TEST(SplitStartup, CancelRequestWithWrongLengthIsMalformed) {
  const std::string f_wire = packet(kCancelRequestCode, "12345678" "9");
  auto f = only_startup(f_wire);
  EXPECT_EQ(frontend::CancelRequest::decode(f).error().code, Errc::malformed);
  const std::string g_wire = packet(kCancelRequestCode, "1234");
  auto g = only_startup(g_wire);
  EXPECT_FALSE(frontend::CancelRequest::decode(g).ok());
  const std::string h_wire = packet(kProtocol30, "12345678");
  auto h = only_startup(h_wire);
  EXPECT_FALSE(frontend::CancelRequest::decode(h).ok());
}

TEST(SplitStartup, Protocol30ParamsRoundTrip) {
  std::string wire;
  write_startup(wire, {{"user", "flopods"}, {"database", "flopods"}, {"options", "-c search_path=x"},
                       {"application_name", ""}});
  StartupFrame f = only_startup(wire);
  EXPECT_EQ(f.code, kProtocol30);
  auto s = frontend::Startup::decode(f);
  ASSERT_TRUE(s.ok()) << s.error().detail;
  EXPECT_EQ(s->protocol_version, kProtocol30);
  ASSERT_EQ(s->params.size(), 4u);
  EXPECT_EQ(s->get("user"), "flopods");
  EXPECT_EQ(s->get("options"), "-c search_path=x");
  EXPECT_EQ(s->get("application_name"), "");
  EXPECT_EQ(s->get("missing"), "");
  EXPECT_FALSE(s->needs_negotiation());
}

TEST(SplitStartup, RepeatedParameterLastWins) {
  const std::string f_wire = packet(kProtocol30, S("user\0a\0user\0b\0\0"));
  auto f = only_startup(f_wire);
  auto s = frontend::Startup::decode(f);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->get("user"), "b");
}

TEST(SplitStartup, Protocol32WithPqOptionsDecodes) {
  const uint32_t v32 = (3u << 16) | 2;
  const std::string f_wire = packet(v32, S("user\0u\0_pq_.frobnicate\0on\0\0"));
  auto f = only_startup(f_wire);
  auto s = frontend::Startup::decode(f);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->protocol_version, v32);
  EXPECT_EQ(s->minor_version(), 2);
  EXPECT_EQ(s->get("_pq_.frobnicate"), "on");
  EXPECT_EQ(s->protocol_options(), (std::vector<std::string_view>{"_pq_.frobnicate"}));
  EXPECT_TRUE(s->needs_negotiation());
}

TEST(SplitStartup, Protocol2IsUnsupported) {
  const std::string f_wire = packet(2u << 16, S("user\0u\0\0"));
  auto f = only_startup(f_wire);
  auto s = frontend::Startup::decode(f);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::unsupported);
}

TEST(SplitStartup, BadLayouts) {
  // No terminator; name without value; bytes after the terminator; empty body.
  for (std::string body : {S("user\0u\0"), S("user\0u\0db\0"), S("user\0u\0\0x"), S("")}) {
    const std::string f_wire = packet(kProtocol30, body);
    auto f = only_startup(f_wire);
    EXPECT_FALSE(frontend::Startup::decode(f).ok()) << body.size();
  }
  const std::string empty_wire = packet(kProtocol30, S("\0"));
  auto empty = only_startup(empty_wire);
  EXPECT_TRUE(frontend::Startup::decode(empty).ok());
}

TEST(SplitStartup, DirectTlsOnFirstByte) {
  std::string hello = "\x16\x03\x01\x02\x00\x01";
  for (size_t n = 1; n <= hello.size(); ++n) {
    StartupResult r = split_startup(bytes_of(hello).first(n));
    ASSERT_TRUE(std::holds_alternative<Invalid>(r));
    EXPECT_EQ(std::get<Invalid>(r).reason, "direct TLS");
  }
}

TEST(SplitStartup, OverTenThousandBytesRejectedFromLength) {
  std::string big = be32(10001);
  StartupResult r = split_startup(bytes_of(big));
  ASSERT_TRUE(std::holds_alternative<Invalid>(r));
  std::string at_cap = be32(10000) + be32(kProtocol30);
  StartupResult ok = split_startup(bytes_of(at_cap));
  ASSERT_TRUE(std::holds_alternative<NeedMore>(ok));
  EXPECT_EQ(std::get<NeedMore>(ok).at_least, 10000u);
}

TEST(SplitStartup, LengthBelowEightIsInvalid) {
  for (uint32_t len : {0u, 4u, 7u}) {
    std::string wire = be32(len) + be32(kProtocol30);
    EXPECT_TRUE(std::holds_alternative<Invalid>(split_startup(bytes_of(wire)))) << len;
  }
  std::string negative = be32(0x80000000u);
  EXPECT_TRUE(std::holds_alternative<Invalid>(split_startup(bytes_of(negative))));
}

TEST(SplitStartup, ByteByByteThenNextPacket) {
  std::string wire = packet(kSslRequestCode, "");
  write_startup(wire, {{"user", "u"}});
  for (size_t n = 0; n < 8; ++n) {
    StartupResult r = split_startup(bytes_of(wire).first(n));
    ASSERT_TRUE(std::holds_alternative<NeedMore>(r)) << n;
    EXPECT_GT(std::get<NeedMore>(r).at_least, n);
  }
  StartupResult first = split_startup(bytes_of(wire));
  ASSERT_TRUE(std::holds_alternative<StartupFrame>(first));
  EXPECT_EQ(std::get<StartupFrame>(first).size, 8u);
  StartupResult second = split_startup(bytes_of(wire).subspan(8));
  ASSERT_TRUE(std::holds_alternative<StartupFrame>(second));
  EXPECT_EQ(std::get<StartupFrame>(second).code, kProtocol30);
}

}  // namespace
}  // namespace pgs::protocol
