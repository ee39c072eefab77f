package training_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/forge-training/forge-training/clients/go/forge/training"
	trainingv1 "github.com/forge-training/forge-training/clients/go/forge/training/v1"
)

// Dropped streams, which the real server sends only when a network fails: a stand-in server
// drops the first stream of each call mid-way with UNAVAILABLE, and the client must continue
// where it stopped, delivering every point and byte exactly once.

type droppingTrainer struct {
	trainingv1.UnimplementedTrainerServiceServer
	artifact []byte

	mu           sync.Mutex
	watchFrom    []int64 // from_sequence of each WatchTrainingMetrics call
	exportOffset []int64 // offset of each ExportModel call
	neverEnds    bool    // every metric stream ends before a final state, without points
}

// calls gives the from_sequence of each watch and the offset of each export so far.
func (d *droppingTrainer) calls() (watchFrom, exportOffset []int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int64{}, d.watchFrom...), append([]int64{}, d.exportOffset...)
}

func point(sequence int64) *trainingv1.TrainingMetrics {
	return &trainingv1.TrainingMetrics{Sequence: sequence, Epoch: int32(sequence), TotalEpochs: 3}
}

func (d *droppingTrainer) WatchTrainingMetrics(request *trainingv1.WatchTrainingMetricsRequest,
	stream trainingv1.TrainerService_WatchTrainingMetricsServer) error {
	d.mu.Lock()
	d.watchFrom = append(d.watchFrom, request.GetFromSequence())
	call := len(d.watchFrom)
	d.mu.Unlock()
	running := trainingv1.JobState_JOB_STATE_RUNNING
	if d.neverEnds {
		return stream.Send(&trainingv1.WatchTrainingMetricsResponse{JobState: running})
	}
	if call == 1 {
		if err := stream.Send(&trainingv1.WatchTrainingMetricsResponse{
			Points: []*trainingv1.TrainingMetrics{point(1), point(2)}, JobState: running,
		}); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "connection reset")
	}
	// The second stream repeats point 2, as a server may when the client's last sequence is stale.
	return stream.Send(&trainingv1.WatchTrainingMetricsResponse{
		Points:   []*trainingv1.TrainingMetrics{point(2), point(3)},
		JobState: trainingv1.JobState_JOB_STATE_COMPLETED,
	})
}

func (d *droppingTrainer) ExportModel(request *trainingv1.ExportModelRequest,
	stream trainingv1.TrainerService_ExportModelServer) error {
	d.mu.Lock()
	d.exportOffset = append(d.exportOffset, request.GetOffset())
	call := len(d.exportOffset)
	d.mu.Unlock()
	sum := sha256.Sum256(d.artifact)
	metadata := &trainingv1.ExportMetadata{SizeBytes: int64(len(d.artifact)), Sha256: hex.EncodeToString(sum[:])}
	offset := request.GetOffset()
	end := int64(len(d.artifact))
	if call == 1 {
		end = 10
	}
	if err := stream.Send(&trainingv1.ExportModelResponse{
		Metadata: metadata, Offset: offset, Data: d.artifact[offset:end],
	}); err != nil {
		return err
	}
	if call == 1 {
		return status.Error(codes.Unavailable, "connection reset")
	}
	return nil
}

func serveDropping(t *testing.T, trainer *droppingTrainer) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	trainingv1.RegisterTrainerServiceServer(server, trainer)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

func TestWatchMetricsContinuesAfterADroppedStream(t *testing.T) {
	trainer := &droppingTrainer{}
	client := dial(t, serveDropping(t, trainer))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var sequences []int64
	err := client.WatchMetrics(ctx, "jobs/x", 0, func(p *trainingv1.TrainingMetrics) error {
		sequences = append(sequences, p.GetSequence())
		return nil
	})
	if err != nil || !reflect.DeepEqual(sequences, []int64{1, 2, 3}) {
		t.Fatalf("delivered %v, %v; want [1 2 3], each once", sequences, err)
	}
	if watchFrom, _ := trainer.calls(); !reflect.DeepEqual(watchFrom, []int64{0, 2}) {
		t.Errorf("streams opened from sequences %v, want [0 2]", watchFrom)
	}
}

func TestWatchMetricsGivesUpAfterMaxReconnects(t *testing.T) {
	trainer := &droppingTrainer{neverEnds: true}
	client := dial(t, serveDropping(t, trainer), training.WithMaxReconnects(2))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := client.WatchMetrics(ctx, "jobs/x", 0, func(*trainingv1.TrainingMetrics) error { return nil })
	if watchFrom, _ := trainer.calls(); status.Code(err) != codes.Unavailable || len(watchFrom) != 3 {
		t.Fatalf("after %d streams: %v; want UNAVAILABLE after 3 (1 + 2 reconnects)", len(watchFrom), err)
	}
}

func TestExportModelContinuesFromTheLastByte(t *testing.T) {
	trainer := &droppingTrainer{artifact: []byte("an artifact of some thirty bytes")}
	client := dial(t, serveDropping(t, trainer))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	metadata, err := client.ExportModel(ctx, "jobs/x", trainingv1.ExportFormat_EXPORT_FORMAT_ONNX, &out)
	if err != nil || !bytes.Equal(out.Bytes(), trainer.artifact) {
		t.Fatalf("exported %q, %v; want the whole artifact once", out.String(), err)
	}
	_, offsets := trainer.calls()
	if metadata.GetSizeBytes() != int64(len(trainer.artifact)) || !reflect.DeepEqual(offsets, []int64{0, 10}) {
		t.Errorf("metadata %v, calls from offsets %v; want [0 10]", metadata, offsets)
	}
}
