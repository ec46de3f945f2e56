// TLS client context for outgoing connections the director makes itself (the
// health probes of imaps/pop3s ports). Made at startup, before the chroot,
// because Dovecot loads its TLS module and OpenSSL reads its configuration
// from the file system then.
#pragma once

#include <memory>
#include <string>

struct ssl_iostream_context;

namespace director::adapter {

class TlsClientContext {
public:
	// A context that does not verify certificates: a probe checks that the
	// server completes a handshake and answers, not who it is. nullptr with
	// error_r set on failure.
	static std::unique_ptr<TlsClientContext> create(std::string &error_r);
	~TlsClientContext();
	TlsClientContext(const TlsClientContext &) = delete;
	TlsClientContext &operator=(const TlsClientContext &) = delete;
	struct ssl_iostream_context *get() const { return ctx_; }

private:
	explicit TlsClientContext(struct ssl_iostream_context *ctx) : ctx_(ctx) {}
	struct ssl_iostream_context *ctx_;
};

} // namespace director::adapter
