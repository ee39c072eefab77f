package training_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/forge-training/forge-training/clients/go/forge/training"
	trainingv1 "github.com/forge-training/forge-training/clients/go/forge/training/v1"
)

var features = []string{"f1", "f2", "f3", "f4"}

// writeCSV writes rows of four numeric features and a binary label that a linear model
// separates well (the label follows 1.5*f1 - f2 + 0.5*f3 plus a little noise; f4 is noise).
func writeCSV(t *testing.T, rows int) string {
	t.Helper()
	random := rand.New(rand.NewSource(7))
	var b strings.Builder
	b.WriteString(strings.Join(features, ",") + ",label\n")
	for i := 0; i < rows; i++ {
		f := [4]float64{random.NormFloat64(), random.NormFloat64(), random.NormFloat64(), random.NormFloat64()}
		label := 0
		if 1.5*f[0]-f[1]+0.5*f[2]+0.3*random.NormFloat64() > 0 {
			label = 1
		}
		fmt.Fprintf(&b, "%.4f,%.4f,%.4f,%.4f,%d\n", f[0], f[1], f[2], f[3], label)
	}
	path := filepath.Join(t.TempDir(), "points.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func dial(t *testing.T, address string, opts ...training.Option) *training.Client {
	t.Helper()
	client, err := training.Dial(address, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func logisticRegression(t *testing.T, dataset string, epochs int32) *trainingv1.TrainingRequest {
	t.Helper()
	// A few lbfgs iterations per epoch, so the model improves over the epochs instead of
	// converging (and finishing early) in the first.
	hyperparameters, err := structpb.NewStruct(map[string]interface{}{"max_iter": 3})
	if err != nil {
		t.Fatal(err)
	}
	return &trainingv1.TrainingRequest{
		ModelType: trainingv1.ModelType_MODEL_TYPE_CLASSIFICATION,
		ModelConfig: &trainingv1.ModelConfig{
			Framework: "sklearn", Architecture: "logistic_regression", Hyperparameters: hyperparameters,
		},
		TrainingConfig: &trainingv1.TrainingConfig{Epochs: epochs, Seed: 7},
		DataConfig: &trainingv1.TrainingDataConfig{
			TrainDataset: dataset, LabelColumn: "label", ValidationFraction: 0.2,
		},
	}
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// The user flow: upload a CSV, train, watch every epoch's metrics arrive, wait for the end,
// export ONNX (to a file and to a writer) with the sha256 the server reports.
func TestUploadTrainWatchExport(t *testing.T) {
	server := sharedServer(t)
	client := dial(t, server.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// The server checks the size and sha256 the upload's first message declares.
	dataset, err := client.UploadDataset(ctx, writeCSV(t, 200), training.UploadOptions{DatasetID: "go-flow", LabelColumn: "label"})
	if err != nil {
		t.Fatalf("UploadDataset: %v", err)
	}
	if dataset.GetName() != "projects/default/datasets/go-flow" || dataset.GetRowCount() != 200 {
		t.Fatalf("uploaded %s with %d rows, want projects/default/datasets/go-flow with 200", dataset.GetName(), dataset.GetRowCount())
	}
	var columns []string
	for _, column := range dataset.GetSchema().GetColumns() {
		columns = append(columns, column.GetName())
	}
	if want := append(append([]string{}, features...), "label"); !reflect.DeepEqual(columns, want) {
		t.Errorf("schema columns %v, want %v", columns, want)
	}

	job, err := client.StartTraining(ctx, "go-flow-logreg", logisticRegression(t, dataset.GetName(), 3))
	if err != nil {
		t.Fatalf("StartTraining: %v", err)
	}
	if job.GetName() != "projects/default/trainingJobs/go-flow-logreg" {
		t.Errorf("job name %s", job.GetName())
	}

	var points []*trainingv1.TrainingMetrics
	err = client.WatchMetrics(ctx, job.GetName(), 0, func(p *trainingv1.TrainingMetrics) error {
		points = append(points, p)
		return nil
	})
	if err != nil {
		t.Fatalf("WatchMetrics: %v", err)
	}
	if len(points) != 3 {
		t.Fatalf("got %d metric points, want one per epoch (3)", len(points))
	}
	for i, p := range points {
		if p.GetEpoch() != int32(i+1) || p.GetSequence() != int64(i+1) || p.GetTotalEpochs() != 3 {
			t.Errorf("point %d: epoch %d, sequence %d, total epochs %d", i, p.GetEpoch(), p.GetSequence(), p.GetTotalEpochs())
		}
		if p.ValidationLoss == nil || p.GetValidationLoss() <= 0 || p.Accuracy == nil {
			t.Errorf("point %d has no validation loss or accuracy: %v", i, p)
		}
	}
	if last := points[2].GetAccuracy(); last < 0.8 {
		t.Errorf("validation accuracy after the last epoch %.3f, want > 0.8", last)
	}

	done, err := client.WaitForJob(ctx, job.GetName())
	if err != nil {
		t.Fatalf("WaitForJob: %v", err)
	}
	if done.GetState() != trainingv1.JobState_JOB_STATE_COMPLETED {
		t.Fatalf("job ended %s: %v", done.GetState(), done.GetError())
	}

	onnxPath := filepath.Join(t.TempDir(), "model.onnx")
	metadata, err := client.ExportModelToFile(ctx, job.GetName(), trainingv1.ExportFormat_EXPORT_FORMAT_ONNX, onnxPath)
	if err != nil {
		t.Fatalf("ExportModelToFile: %v", err)
	}
	model, err := os.ReadFile(onnxPath)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(model)) != metadata.GetSizeBytes() || sha256Hex(model) != metadata.GetSha256() {
		t.Errorf("the file holds %d bytes with sha256 %s; the server reported %d bytes, %s",
			len(model), sha256Hex(model), metadata.GetSizeBytes(), metadata.GetSha256())
	}
	if metadata.GetFormat() != trainingv1.ExportFormat_EXPORT_FORMAT_ONNX ||
		!reflect.DeepEqual(metadata.GetInputFeatures(), features) ||
		!reflect.DeepEqual(metadata.GetClassLabels(), []string{"0", "1"}) {
		t.Errorf("export metadata: format %s, input features %v, class labels %v",
			metadata.GetFormat(), metadata.GetInputFeatures(), metadata.GetClassLabels())
	}

	var buffer bytes.Buffer
	again, err := client.ExportModel(ctx, job.GetName(), trainingv1.ExportFormat_EXPORT_FORMAT_ONNX, &buffer)
	if err != nil {
		t.Fatalf("ExportModel: %v", err)
	}
	if again.GetSha256() != metadata.GetSha256() || !bytes.Equal(buffer.Bytes(), model) {
		t.Errorf("a second export to a writer differs from the file: sha256 %s vs %s", again.GetSha256(), metadata.GetSha256())
	}

	var history bytes.Buffer
	if err := client.ExportMetrics(ctx, job.GetName(), trainingv1.MetricsExportFormat_METRICS_EXPORT_FORMAT_CSV, &history); err != nil {
		t.Fatalf("ExportMetrics: %v", err)
	}
	rows := strings.Split(strings.TrimSpace(history.String()), "\n")
	if len(rows) != 1+int(done.GetCurrentEpoch()) || !strings.HasPrefix(rows[0], "sequence,time,epoch,") {
		t.Errorf("the metric history as CSV has %d lines (want a header and %d epochs), header %q",
			len(rows), done.GetCurrentEpoch(), rows[0])
	}
}

// A watch callback stops the stream early with StopWatching and gets no error.
func TestWatchMetricsStopsWhenTheCallbackSaysSo(t *testing.T) {
	server := sharedServer(t)
	client := dial(t, server.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dataset, err := client.UploadDataset(ctx, writeCSV(t, 200), training.UploadOptions{LabelColumn: "label"})
	if err != nil {
		t.Fatalf("UploadDataset: %v", err)
	}
	job, err := client.StartTraining(ctx, "", logisticRegression(t, dataset.GetName(), 4))
	if err != nil {
		t.Fatalf("StartTraining: %v", err)
	}
	var epochs []int32
	err = client.WatchMetrics(ctx, job.GetName(), 1, func(p *trainingv1.TrainingMetrics) error {
		epochs = append(epochs, p.GetEpoch())
		if len(epochs) == 2 {
			return training.StopWatching
		}
		return nil
	})
	if err != nil || !reflect.DeepEqual(epochs, []int32{2, 3}) {
		t.Fatalf("watching from sequence 1 and stopping after two points gave epochs %v, error %v; want [2 3], nil", epochs, err)
	}
	// The callback's own errors come back as they are.
	mine := errors.New("mine")
	err = client.WatchMetrics(ctx, job.GetName(), 0, func(*trainingv1.TrainingMetrics) error { return mine })
	if err != mine {
		t.Fatalf("WatchMetrics returned %v, want the callback's error", err)
	}
}

// Failed calls are *training.Error values carrying the gRPC code and the field violations.
func TestErrorsCarryTheGRPCCode(t *testing.T) {
	server := sharedServer(t)
	client := dial(t, server.Address)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := client.GetJob(ctx, "no-such-job")
	var rpcErr *training.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != codes.NotFound || status.Code(err) != codes.NotFound {
		t.Fatalf("GetJob of a missing job: %v (%T), want a *training.Error with NOT_FOUND", err, err)
	}
	if !strings.HasPrefix(err.Error(), "NOT_FOUND: ") || !strings.Contains(err.Error(), "no-such-job") {
		t.Errorf("message %q should name the code and the job", err.Error())
	}
	if rpcErr.RequestID == "" || !server.logged("request_id="+rpcErr.RequestID, 5*time.Second) {
		t.Errorf("request id %q is not one the server logged", rpcErr.RequestID)
	}

	target := filepath.Join(t.TempDir(), "model.onnx")
	_, err = client.ExportModelToFile(ctx, "no-such-job", trainingv1.ExportFormat_EXPORT_FORMAT_ONNX, target)
	if status.Code(err) != codes.NotFound {
		t.Fatalf("export of a missing job: %v, want NOT_FOUND", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(target)); len(entries) != 0 {
		t.Errorf("a failed export left %v behind", entries)
	}

	spec := logisticRegression(t, "", 1) // no training dataset
	_, err = client.StartTraining(ctx, "", spec)
	if !errors.As(err, &rpcErr) || rpcErr.Code != codes.InvalidArgument {
		t.Fatalf("StartTraining without a dataset: %v, want INVALID_ARGUMENT", err)
	}
	want := training.FieldViolation{Field: "data_config.train_dataset", Reason: "REQUIRED"}
	if len(rpcErr.FieldViolations) != 1 || rpcErr.FieldViolations[0].Field != want.Field ||
		rpcErr.FieldViolations[0].Reason != want.Reason || rpcErr.FieldViolations[0].Description == "" {
		t.Fatalf("field violations %+v, want one for %s (REQUIRED) with a description", rpcErr.FieldViolations, want.Field)
	}
	if !strings.HasPrefix(err.Error(), "INVALID_ARGUMENT: data_config.train_dataset: ") {
		t.Errorf("message %q should name the field", err.Error())
	}
}
