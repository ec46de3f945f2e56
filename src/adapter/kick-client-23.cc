// Dovecot 2.3: kicks through the ipc service, which forwards them to every
// login process.
#include "adapter/kick-client.h"

#include "adapter/dovecot.h"
#include "adapter/handles.h"

extern "C" {
#include "ipc-client.h"
}

namespace director::adapter {

namespace {

// The ipc service's client socket, relative to base_dir (we are chrooted there).
constexpr const char *ipc_socket_path = "ipc";

class IpcKickClient : public KickClient {
public:
	explicit IpcKickClient(struct event *event) : event_(event)
	{
		ipc_ = ipc_client_init(ipc_socket_path);
	}
	~IpcKickClient() override { ipc_client_deinit(&ipc_); }

	void connect() override {}

	void kick(const core::Kick &kick, Callback done) override
	{
		std::string ipc_line = core::kick_ipc_line(kick);
		e_debug(event_, "ipc: %s", ipc_line.c_str());
		auto *ctx = new Command{this, std::move(done)};
		(void)ipc_client_cmd(ipc_, ipc_line.c_str(),
				     reinterpret_cast<ipc_client_callback_t *>(reply), ctx);
	}

private:
	struct Command {
		IpcKickClient *client;
		Callback done;
	};

	static void reply(int state, const char *data, void *context) noexcept
	{
		auto *cmd = static_cast<Command *>(context);
		if (state == IPC_CLIENT_CMD_STATE_REPLY) {
			e_error(cmd->client->event_,
				"login process sent unexpected reply to kick: %s", data);
			return;
		}
		std::unique_ptr<Command> owned(cmd);
		bool ok = state == IPC_CLIENT_CMD_STATE_OK;
		std::string text = data == nullptr ? "" : data;
		run_noexcept("ipc reply", [&]() { owned->done(ok, text); });
	}

	struct event *event_;
	struct ipc_client *ipc_;
};

} // namespace

std::unique_ptr<KickClient> KickClient::create(struct event *event, core::UsernameHash)
{
	return std::make_unique<IpcKickClient>(event);
}

} // namespace director::adapter
