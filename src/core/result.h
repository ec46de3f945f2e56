// Result<T>: a value or an error message, for parsers and validators fed with
// untrusted input. Core code reports failure through it and never throws or logs.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace director::core {

// The failure half of a Result: a human-readable reason, already safe to log
// (callers quote untrusted input with quote_for_log()).
struct Error {
	std::string message;
};

inline Error make_error(std::string message)
{
	return Error{std::move(message)};
}

// Holds either a T or an Error. Accessing the wrong half is a programming
// error; check ok() first.
template <typename T> class Result {
public:
	Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
	Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

	bool ok() const { return v_.index() == 0; }
	explicit operator bool() const { return ok(); }

	const T &value() const & { return std::get<0>(v_); }
	T &value() & { return std::get<0>(v_); }
	T &&value() && { return std::get<0>(std::move(v_)); }
	const T &operator*() const & { return value(); }
	const T *operator->() const { return &value(); }

	const std::string &error() const { return std::get<1>(v_).message; }

private:
	std::variant<T, Error> v_;
};

// A Result without a value.
class Status {
public:
	Status() = default;
	Status(Error error) : error_(std::move(error.message)), failed_(true) {}
	static Status success() { return Status(); }

	bool ok() const { return !failed_; }
	explicit operator bool() const { return ok(); }
	const std::string &error() const { return error_; }

private:
	std::string error_;
	bool failed_ = false;
};

} // namespace director::core
