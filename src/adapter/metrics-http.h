// The director-metrics listener's HTTP side, on Dovecot's lib-http server:
// GET (or HEAD) /metrics answers the text a callback renders; anything else
// gets an HTTP error. Request parsing, limits, pipelining and idle timeouts
// are lib-http's. Owns the http_server; no director state here.
#pragma once

#include <functional>
#include <memory>
#include <string>

struct event;
struct http_server;
struct http_server_connection;
struct http_server_callbacks;
struct http_server_request;

namespace director::adapter {

class MetricsHttpServer;

// One accepted client. Destroying it closes the connection (without calling
// `closed`); otherwise `closed` runs once lib-http has closed it (EOF, error,
// idle timeout, bad request), from an ioloop callback.
class MetricsHttpConnection {
public:
	~MetricsHttpConnection();
	MetricsHttpConnection(const MetricsHttpConnection &) = delete;
	MetricsHttpConnection &operator=(const MetricsHttpConnection &) = delete;

private:
	friend class MetricsHttpServer;
	MetricsHttpConnection() = default;
	static void destroyed(void *context, const char *reason) noexcept;

	MetricsHttpServer *server_ = nullptr;
	struct http_server_connection *conn_ = nullptr;
	std::function<void()> closed_;
};

class MetricsHttpServer {
public:
	// render: the body of a /metrics reply and its Content-Type. It runs in
	// the ioloop for each request and must not block.
	using Render = std::function<std::string(std::string &content_type_r)>;
	MetricsHttpServer(struct event *parent, Render render);
	~MetricsHttpServer();
	MetricsHttpServer(const MetricsHttpServer &) = delete;
	MetricsHttpServer &operator=(const MetricsHttpServer &) = delete;

	// Serves an accepted socket; the connection takes the fd.
	std::unique_ptr<MetricsHttpConnection> accept(int fd, std::function<void()> closed);

	// Requests answered with 200 so far (for tests and logs).
	uint64_t requests_served() const { return served_; }

private:
	static void handle_request(void *context, struct http_server_request *req) noexcept;
	void respond(struct http_server_request *req);

	static const struct http_server_callbacks callbacks_;
	struct http_server *server_ = nullptr;
	struct event *event_ = nullptr;
	Render render_;
	uint64_t served_ = 0;
};

} // namespace director::adapter
