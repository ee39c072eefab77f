package training_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/forge-training/forge-training/clients/go/forge/training"
	trainingv1 "github.com/forge-training/forge-training/clients/go/forge/training/v1"
)

// The flow of the README, compiled with the tests (an example without an Output comment is
// not run: it needs a server at 127.0.0.1:50051 and churn.csv).
func Example() {
	client, err := training.Dial("127.0.0.1:50051") // training.WithAPIKey(key), training.WithTLS(config), ...
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	dataset, err := client.UploadDataset(ctx, "churn.csv", training.UploadOptions{DatasetID: "churn", LabelColumn: "churned"})
	if err != nil {
		log.Fatal(err)
	}
	job, err := client.StartTraining(ctx, "churn-logreg", &trainingv1.TrainingRequest{
		ModelType:      trainingv1.ModelType_MODEL_TYPE_CLASSIFICATION,
		ModelConfig:    &trainingv1.ModelConfig{Framework: "sklearn", Architecture: "logistic_regression"},
		TrainingConfig: &trainingv1.TrainingConfig{Epochs: 10, Seed: 7},
		DataConfig:     &trainingv1.TrainingDataConfig{TrainDataset: dataset.Name, LabelColumn: "churned"},
	})
	if err != nil {
		log.Fatal(err)
	}
	err = client.WatchMetrics(ctx, job.Name, 0, func(p *trainingv1.TrainingMetrics) error {
		fmt.Printf("epoch %d/%d: validation loss %.4f, accuracy %.3f\n",
			p.Epoch, p.TotalEpochs, p.GetValidationLoss(), p.GetAccuracy())
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	done, err := client.WaitForJob(ctx, job.Name)
	if err != nil {
		log.Fatal(err)
	}
	if done.State != trainingv1.JobState_JOB_STATE_COMPLETED {
		log.Fatalf("the job ended %s: %s", done.State, done.GetError().GetMessage())
	}
	metadata, err := client.ExportModelToFile(ctx, job.Name, trainingv1.ExportFormat_EXPORT_FORMAT_ONNX, "churn.onnx")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("churn.onnx:", metadata.SizeBytes, "bytes, sha256", metadata.Sha256)

	// Errors carry the gRPC code.
	_, err = client.GetJob(ctx, "no-such-job")
	var rpcErr *training.Error
	if errors.As(err, &rpcErr) && rpcErr.Code == codes.NotFound {
		fmt.Println(err) // NOT_FOUND: ...
	}
}
