/* LD_PRELOAD shim for admin_integration_test: OpenSSL's RAND_bytes fails for 4-byte requests (the
 * proxy's cancel-key secret and md5 salt), as a broken random source would, and works for every other
 * size (SCRAM nonces, the process secret), so a login gets as far as its cancel key. */
#define _GNU_SOURCE
#include <dlfcn.h>

int RAND_bytes(unsigned char* buf, int num) {
  static int (*real)(unsigned char*, int) = 0;
  if (num == 4) return 0;
  if (real == 0) real = (int (*)(unsigned char*, int))dlsym(RTLD_NEXT, "RAND_bytes");
  return real == 0 ? 0 : real(buf, num);
}
