// lib-http server glue for the director-metrics listener (2.3 and 2.4).
#include "adapter/metrics-http.h"

#include "adapter/dovecot.h"
#include "adapter/event-log.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
extern "C" {
#include "http-url.h"
#include "http-request.h"
#include "http-server.h"
}
#pragma GCC diagnostic pop

#include <cstring>

namespace director::adapter {

namespace {

// A scraper keeps its connection between scrapes (15 s by default); one idle
// longer than this is closed and simply reconnects. Bounds what an idle
// client costs.
constexpr unsigned idle_timeout_msecs = 60 * 1000;
// A GET /metrics has a short target, a few headers and no body.
constexpr uoff_t max_target_length = 1024;
constexpr uoff_t max_payload_size = 1024;
constexpr uoff_t max_header_size = 16 * 1024;
constexpr uoff_t max_header_field_size = 4 * 1024;
constexpr unsigned max_header_fields = 64;

} // namespace

// lib-http keeps a pointer to the callbacks; the context of both is the
// MetricsHttpConnection, which knows its server.
const struct http_server_callbacks MetricsHttpServer::callbacks_ = {
	.handle_request = &MetricsHttpServer::handle_request,
	.handle_connect_request = nullptr,
	.connection_destroy = &MetricsHttpConnection::destroyed,
};

MetricsHttpConnection::~MetricsHttpConnection()
{
	if (conn_ != nullptr) {
		closed_ = nullptr; // we are going away: no callback into us
		struct http_server_connection *c = conn_;
		conn_ = nullptr;
		http_server_connection_close(&c, "director shutting down");
	}
}

void MetricsHttpConnection::destroyed(void *context, const char *) noexcept
{
	auto *self = static_cast<MetricsHttpConnection *>(context);
	if (self->conn_ == nullptr)
		return; // closed by our destructor
	self->conn_ = nullptr;
	if (self->closed_) {
		try {
			auto closed = std::move(self->closed_);
			closed();
		} catch (const std::exception &e) {
			e_error(director_root_event(),
				"director-metrics: closing a connection failed: %s", e.what());
		}
	}
}

MetricsHttpServer::MetricsHttpServer(struct event *parent, Render render)
	: render_(std::move(render))
{
	event_ = event_create(parent);
	event_set_append_log_prefix(event_, "director-metrics: ");
#if DIRECTOR_DOVECOT_API >= 24
	// 2.4 keeps a pointer to the settings and frees them (unrefs their
	// pool) in http_server_deinit(); our reference goes once it holds one.
	pool_t pool = pool_alloconly_create("director-metrics http settings", 1024);
	auto *set = p_new(pool, struct http_server_settings, 1);
	http_server_settings_init(pool, set);
	set->max_client_idle_time_msecs = idle_timeout_msecs;
	set->max_pipelined_requests = 1;
	set->request_max_target_length = max_target_length;
	set->request_max_payload_size = max_payload_size;
	set->request_hdr_max_size = max_header_size;
	set->request_hdr_max_field_size = max_header_field_size;
	set->request_hdr_max_fields = max_header_fields;
	server_ = http_server_init(set, event_);
	pool_unref(&pool);
#else
	struct http_server_settings set;
	i_zero(&set);
	set.max_client_idle_time_msecs = idle_timeout_msecs;
	set.max_pipelined_requests = 1;
	set.request_limits.max_target_length = max_target_length;
	set.request_limits.max_payload_size = max_payload_size;
	set.request_limits.header.max_size = max_header_size;
	set.request_limits.header.max_field_size = max_header_field_size;
	set.request_limits.header.max_fields = max_header_fields;
	set.event = event_;
	server_ = http_server_init(&set);
#endif
}

MetricsHttpServer::~MetricsHttpServer()
{
	http_server_deinit(&server_);
	event_unref(&event_);
}

std::unique_ptr<MetricsHttpConnection> MetricsHttpServer::accept(int fd,
								  std::function<void()> closed)
{
	std::unique_ptr<MetricsHttpConnection> c(new MetricsHttpConnection());
	c->server_ = this;
	c->closed_ = std::move(closed);
	c->conn_ = http_server_connection_create(server_, fd, fd, false, &callbacks_, c.get());
	return c;
}

void MetricsHttpServer::handle_request(void *context, struct http_server_request *req) noexcept
{
	auto *conn = static_cast<MetricsHttpConnection *>(context);
	try {
		conn->server_->respond(req);
	} catch (const std::exception &e) {
		e_error(conn->server_->event_, "request failed: %s", e.what());
		http_server_request_fail(req, 500, "Internal Server Error");
	}
}

void MetricsHttpServer::respond(struct http_server_request *req)
{
	const struct http_request *hreq = http_server_request_get(req);
	bool head = http_request_method_is(hreq, "HEAD");
	if (!head && !http_request_method_is(hreq, "GET")) {
		http_server_request_fail_bad_method(req, "GET, HEAD");
		return;
	}
	const char *path = hreq->target.url != nullptr ? hreq->target.url->path : nullptr;
	if (path == nullptr || std::strcmp(path, "/metrics") != 0) {
		http_server_request_fail(req, 404, "Not Found");
		return;
	}
	std::string content_type;
	std::string body = render_(content_type);
	struct http_server_response *resp = http_server_response_create(req, 200, "OK");
	http_server_response_add_header(resp, "Content-Type", content_type.c_str());
	http_server_response_add_header(resp, "Cache-Control", "no-store");
	if (!head) {
		http_server_response_set_payload_data(
			resp, reinterpret_cast<const unsigned char *>(body.data()), body.size());
	}
	http_server_response_submit(resp);
	served_++;
}

} // namespace director::adapter
