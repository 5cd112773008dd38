package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
)

// ErrorClass groups outcomes: ClassOK for success, otherwise the kind of failure.
type ErrorClass string

// Error classes.
const (
	ClassOK ErrorClass = ""
	// Class3xx, Class4xx and Class5xx are responses with that status class (1xx and other
	// unexpected statuses count as ClassOther).
	Class3xx ErrorClass = "3xx"
	Class4xx ErrorClass = "4xx"
	Class5xx ErrorClass = "5xx"
	// ClassTimeout is a request that ran out of time.
	ClassTimeout ErrorClass = "timeout"
	// ClassConnection is a refused, reset or otherwise broken connection.
	ClassConnection ErrorClass = "connection"
	// ClassNoObject is an operation the generator could not issue because its pool had no
	// suitable object (nothing to delete yet, every object busy).
	ClassNoObject ErrorClass = "no-object"
	// ClassOther is any other failure (an unreadable response, an unexpected status).
	ClassOther ErrorClass = "other"
)

// Classify derives the error class of a status and an error.
func Classify(status int, err error) ErrorClass {
	if err != nil {
		return classifyErr(err)
	}
	switch {
	case status >= 200 && status < 300:
		return ClassOK
	case status >= 300 && status < 400:
		return Class3xx
	case status >= 400 && status < 500:
		return Class4xx
	case status >= 500 && status < 600:
		return Class5xx
	}
	return ClassOther
}

// StatusClass renders an HTTP status class ("2xx") for display.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

func classifyErr(err error) ErrorClass {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ClassTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return ClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return ClassConnection
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return ClassConnection
	}
	return ClassOther
}
