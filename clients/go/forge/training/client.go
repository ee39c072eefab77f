// Package training is the Go client of the forge-training service.
//
//	client, err := training.Dial("127.0.0.1:50051")
//	if err != nil { ... }
//	defer client.Close()
//	dataset, err := client.UploadDataset(ctx, "churn.csv", training.UploadOptions{LabelColumn: "churned"})
//	job, err := client.StartTraining(ctx, "churn-sgd", &trainingv1.TrainingRequest{...})
//	err = client.WatchMetrics(ctx, job.Name, 0, func(p *trainingv1.TrainingMetrics) error { ... })
//	meta, err := client.ExportModelToFile(ctx, job.Name, trainingv1.ExportFormat_EXPORT_FORMAT_ONNX, "model.onnx")
//
// Every method returns a failed RPC as an *Error carrying the gRPC code, the server's message
// and its field violations. Resource arguments take a bare id ("abc") or a full resource name
// ("projects/default/trainingJobs/abc"); both go to the server unchanged. The generated stubs
// (Client.Trainer, Client.Data, Client.Pipelines) reach every other RPC of the contract and
// carry the same API key and project.
package training

import (
	"time"

	"google.golang.org/grpc"

	trainingv1 "github.com/forge-training/forge-training/clients/go/forge/training/v1"
)

// MaxChunkSize is the largest chunk the service accepts or sends: 1 MiB.
const MaxChunkSize = 1 << 20

// Client calls one forge-training server. Its methods are safe for concurrent use.
type Client struct {
	// Raw stubs, for the RPCs without a method here (their errors are plain gRPC status errors).
	Trainer   trainingv1.TrainerServiceClient
	Data      trainingv1.DataServiceClient
	Pipelines trainingv1.PipelineServiceClient

	conn *grpc.ClientConn
	// What the options set; see Dial.
	pollInterval  time.Duration
	maxReconnects int
	exportRetries int
}

// New wraps a connection the caller opened (and closes). Its calls carry only the metadata the
// connection adds itself: pass grpc.WithPerRPCCredentials(training.Identity(key, project)) when
// dialing for the API key and project.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{
		Trainer:       trainingv1.NewTrainerServiceClient(conn),
		Data:          trainingv1.NewDataServiceClient(conn),
		Pipelines:     trainingv1.NewPipelineServiceClient(conn),
		pollInterval:  defaultPoll,
		maxReconnects: defaultMaxReconnects,
		exportRetries: defaultExportRetries,
	}
}

// Dial opens a connection to target ("host:port") and a Client over it. The connection is
// made lazily: an unreachable server shows up as an UNAVAILABLE error of the first call.
func Dial(target string, opts ...Option) (*Client, error) {
	settings := defaultSettings()
	for _, opt := range opts {
		opt(&settings)
	}
	dialOptions, err := settings.dialOptions()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.Dial(target, dialOptions...)
	if err != nil {
		return nil, err
	}
	client := New(conn)
	client.conn = conn
	client.pollInterval = settings.poll
	client.maxReconnects = settings.maxReconnects
	client.exportRetries = settings.exportRetries
	return client, nil
}

// Close closes the connection Dial opened; a Client made by New leaves its connection open.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}
