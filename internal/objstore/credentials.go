package objstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// loadCredentials reads serve.storage.credentials_file, the AWS shared credentials
// format:
//
//	[default]
//	aws_access_key_id = …
//	aws_secret_access_key = …
//	aws_session_token = …   (optional)
//
// once, at start: a rotated key takes a restart. Its keys are never logged and never
// put in an error: errors name the file, the profile and the line.
func loadCredentials(path, profile string) (aws.CredentialsProvider, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("serve.storage.credentials_file: %w; the receiver's user must be able to read it (mode 0600, owned by it)", err)
	}
	creds, err := parseCredentials(data, profile)
	if err != nil {
		return nil, fmt.Errorf("serve.storage.credentials_file %s: %w", path, err)
	}
	creds.Source = "serve.storage.credentials_file"
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }), nil
}

var errNoKeys = errors.New("no aws_access_key_id and aws_secret_access_key")

func parseCredentials(data []byte, profile string) (aws.Credentials, error) {
	var creds aws.Credentials
	section, found := "", false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return creds, fmt.Errorf("line %d: a section header is [name]", n)
			}
			section = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line[1:len(line)-1]), "profile "))
			found = found || section == profile
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return creds, fmt.Errorf("line %d: want key = value", n) // the line itself may hold a key: not quoted
		}
		if section != profile {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "aws_access_key_id":
			creds.AccessKeyID = strings.TrimSpace(val)
		case "aws_secret_access_key":
			creds.SecretAccessKey = strings.TrimSpace(val)
		case "aws_session_token":
			creds.SessionToken = strings.TrimSpace(val)
		}
	}
	if err := sc.Err(); err != nil {
		return creds, err
	}
	switch {
	case !found:
		return creds, fmt.Errorf("no [%s] section (serve.storage.profile)", profile)
	case creds.AccessKeyID == "" || creds.SecretAccessKey == "":
		return creds, fmt.Errorf("[%s]: %w", profile, errNoKeys)
	}
	return creds, nil
}
