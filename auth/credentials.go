package auth

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// StaticCredentials returns a provider of fixed credentials (the SDK's
// credentials.StaticCredentialsProvider).
func StaticCredentials(accessKeyID, secretAccessKey, sessionToken string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, sessionToken)
}

// ProfileCredentials returns the credentials provider of the SDK's shared
// configuration (environment variables, then ~/.aws/config and
// ~/.aws/credentials, or files when given) for profile ("" : the default
// profile, or AWS_PROFILE), already wrapped in a credentials cache. Nothing
// is fetched until credentials are first needed.
func ProfileCredentials(ctx context.Context, profile string, files ...string) (aws.CredentialsProvider, error) {
	opts := []func(*config.LoadOptions) error{}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	if len(files) > 0 {
		opts = append(opts, config.WithSharedConfigFiles(files), config.WithSharedCredentialsFiles(files))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("ss: auth: AWS shared config (profile %q): %w", profile, err)
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("%w: AWS profile %q has no credentials", ErrNoCredentials, profile)
	}
	return cfg.Credentials, nil
}

// EnvCredentials returns the credentials in the AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN environment variables, read
// by the SDK's own environment loader.
func EnvCredentials() (aws.CredentialsProvider, error) {
	env, err := config.NewEnvConfig()
	if err != nil {
		return nil, fmt.Errorf("ss: auth: AWS environment: %w", err)
	}
	if !env.Credentials.HasKeys() {
		return nil, fmt.Errorf("%w: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set", ErrNoCredentials)
	}
	return credentials.StaticCredentialsProvider{Value: env.Credentials}, nil
}
