package training

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// APIKeyEnv names the environment variable Dial takes the API key from when WithAPIKey is not
// given, as the Python SDK does.
const APIKeyEnv = "FORGE_TRAINING_API_KEY"

// ProjectHeader is the metadata key of the project that bare ids mean.
const ProjectHeader = "x-forge-project"

const (
	defaultPoll          = 200 * time.Millisecond
	defaultMaxReconnects = 10
	defaultExportRetries = 3
	// GetRecords may return up to 10000 rows; leave room above gRPC's 4 MiB default.
	maxMessageSize = 64 << 20
)

// Option configures Dial.
type Option func(*settings)

type settings struct {
	apiKey        string
	project       string
	tls           *tls.Config
	useTLS        bool
	extra         []grpc.DialOption
	poll          time.Duration
	maxReconnects int
	exportRetries int
}

func defaultSettings() settings {
	return settings{
		apiKey:        os.Getenv(APIKeyEnv),
		poll:          defaultPoll,
		maxReconnects: defaultMaxReconnects,
		exportRetries: defaultExportRetries,
	}
}

// WithAPIKey sends "authorization: Bearer <key>" with every call (a key from `forge-training
// keys create`). It replaces the FORGE_TRAINING_API_KEY variable; "" sends no key.
func WithAPIKey(key string) Option {
	return func(s *settings) { s.apiKey = key }
}

// WithProject sends the project that bare ids mean (x-forge-project); a key of a single
// project needs none.
func WithProject(project string) Option {
	return func(s *settings) { s.project = project }
}

// WithTLS connects with TLS. A nil config trusts the system's CAs; TLSConfig makes one for a
// private CA and for mutual TLS.
func WithTLS(config *tls.Config) Option {
	return func(s *settings) { s.useTLS, s.tls = true, config }
}

// WithDialOptions adds gRPC dial options (interceptors, keepalive, a custom dialer, ...).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.extra = append(s.extra, opts...) }
}

// WithPollInterval sets how often WaitForJob asks for a job's state (default 200ms).
func WithPollInterval(interval time.Duration) Option {
	return func(s *settings) { s.poll = interval }
}

// WithMaxReconnects bounds how many times in a row WatchMetrics reopens a dropped stream
// without receiving a new point (default 10).
func WithMaxReconnects(n int) Option {
	return func(s *settings) { s.maxReconnects = n }
}

// WithExportRetries bounds how many times ExportModel continues a download after a dropped
// connection (default 3).
func WithExportRetries(n int) Option {
	return func(s *settings) { s.exportRetries = n }
}

func (s settings) dialOptions() ([]grpc.DialOption, error) {
	if s.poll <= 0 {
		return nil, fmt.Errorf("WithPollInterval: the interval must be positive, got %v", s.poll)
	}
	if s.maxReconnects < 0 || s.exportRetries < 0 {
		return nil, errors.New("WithMaxReconnects, WithExportRetries: the count must be 0 or more")
	}
	opts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageSize), grpc.MaxCallSendMsgSize(maxMessageSize)),
	}
	if s.useTLS {
		config := s.tls
		if config == nil {
			config = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(config)))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	if s.apiKey != "" || s.project != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(Identity(s.apiKey, s.project)))
	}
	return append(opts, s.extra...), nil
}

// Identity is the call metadata of an API key and a default project, for connections opened
// without Dial: grpc.WithPerRPCCredentials(training.Identity(key, project)). Either may be "".
func Identity(apiKey, project string) credentials.PerRPCCredentials {
	metadata := map[string]string{}
	if apiKey != "" {
		metadata["authorization"] = "Bearer " + apiKey
	}
	if project != "" {
		metadata[ProjectHeader] = project
	}
	return identity(metadata)
}

type identity map[string]string

func (i identity) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return i, nil
}

// RequireTransportSecurity is false because the server accepts keys in plaintext on loopback;
// it refuses plaintext keys elsewhere unless its operator chose --insecure.
func (identity) RequireTransportSecurity() bool { return false }

// TLSConfig is the TLS configuration for a server whose certificate rootCA (PEM) signed; nil
// rootCA trusts the system's CAs. clientCert and clientKey (PEM) are this client's certificate
// and key for a server that requires mutual TLS: give both or neither.
func TLSConfig(rootCA, clientCert, clientKey []byte) (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if rootCA != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(rootCA) {
			return nil, errors.New("TLSConfig: rootCA holds no PEM certificate")
		}
		config.RootCAs = pool
	}
	if (clientCert == nil) != (clientKey == nil) {
		return nil, errors.New("TLSConfig: clientCert and clientKey go together (mutual TLS): give both or neither")
	}
	if clientCert != nil {
		pair, err := tls.X509KeyPair(clientCert, clientKey)
		if err != nil {
			return nil, fmt.Errorf("TLSConfig: clientCert and clientKey: %w", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}
