// TlsClientContext: Dovecot's ssl-iostream client context.
#include "adapter/tls.h"

#include "adapter/dovecot.h"

extern "C" {
#include "iostream-ssl.h"
}

namespace director::adapter {

std::unique_ptr<TlsClientContext> TlsClientContext::create(std::string &error_r)
{
	const char *error;
	if (ssl_module_load(&error) < 0) {
		error_r = std::string("loading the TLS module failed: ") + error;
		return nullptr;
	}
	struct ssl_iostream_settings set;
	i_zero(&set);
	set.allow_invalid_cert = TRUE;
	set.verify_remote_cert = FALSE;
	struct ssl_iostream_context *ctx;
	if (ssl_iostream_context_init_client(&set, &ctx, &error) < 0) {
		error_r = std::string("creating a TLS client context failed: ") + error;
		return nullptr;
	}
	return std::unique_ptr<TlsClientContext>(new TlsClientContext(ctx));
}

TlsClientContext::~TlsClientContext()
{
	ssl_iostream_context_unref(&ctx_);
}

} // namespace director::adapter
