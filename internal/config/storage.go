package config

import (
	"net/url"
	"strings"
)

// Storage is [serve.storage]: where the receiver keeps episodes and their sidecars
// (SPEC §3.4). With backend "s3" they are objects in a bucket; the index, reports,
// alerts, tokens, releases and the CA stay in serve.data_dir either way.
type Storage struct {
	Backend  string `mapstructure:"backend" help:"where episodes are kept: fs (serve.data_dir/episodes) or s3 (a bucket of an S3-compatible store; everything else stays in data_dir)"`
	Endpoint string `mapstructure:"endpoint" help:"the store's URL, e.g. https://s3.lab:8333 (empty: AWS S3 in region)"`
	Bucket   string `mapstructure:"bucket" help:"the bucket episodes go to; it must exist"`
	Prefix   string `mapstructure:"prefix" help:"key prefix within the bucket, e.g. pi-1/ (objects are <prefix>episodes/<host>/<sha256>[.json]); one receiver per prefix"`
	Region   string `mapstructure:"region" help:"the bucket's region, signed into every request"`
	// PathStyle is on by default: self-hosted stores (versitygw, SeaweedFS, MinIO,
	// Garage) are reached by an address without a DNS name per bucket.
	PathStyle       bool     `mapstructure:"path_style" help:"address the bucket as endpoint/bucket/key rather than bucket.endpoint/key (keep true for versitygw, SeaweedFS, MinIO and Garage)"`
	CredentialsFile string   `mapstructure:"credentials_file" help:"AWS-style credentials file ([default] aws_access_key_id, aws_secret_access_key), mode 0600; keys never go in lab-host.toml"`
	Profile         string   `mapstructure:"profile" help:"the [section] of credentials_file to use"`
	PartSize        ByteSize `mapstructure:"part_size" help:"size of each part of a multipart upload (at least 5MiB; an episode has at most 10000 parts)"`
	SinglePutMax    ByteSize `mapstructure:"single_put_max" help:"largest episode streamed as one PutObject that the store checks against its SHA-256 (x-amz-checksum-sha256), where the store does; larger ones, bodies without a length and other stores go in multipart uploads; 0: always multipart"`
	CAFile          string   `mapstructure:"ca_file" help:"CA that signed the store's TLS certificate (empty: the system's CAs)"`
}

// Storage backends.
const (
	BackendFS = "fs"
	BackendS3 = "s3"
)

// S3 limits on multipart uploads.
const (
	minPartSize = 5 * MiB
	maxPartSize = 5 * GiB
	maxParts    = 10000
)

func defaultStorage() Storage {
	return Storage{Backend: BackendFS, Region: "us-east-1", PathStyle: true, Profile: "default", PartSize: 8 * MiB, SinglePutMax: maxPartSize}
}

// Where names the store for people: its endpoint, or AWS S3 and the region.
func (s Storage) Where() string {
	if s.Endpoint == "" {
		return "AWS S3 (" + s.Region + ")"
	}
	return s.Endpoint
}

// ObjectPrefix is prefix as objects are named: "" or ending in one slash.
func (s Storage) ObjectPrefix() string {
	if s.Prefix == "" || strings.HasSuffix(s.Prefix, "/") {
		return s.Prefix
	}
	return s.Prefix + "/"
}

func (sc Serve) checkStorage() []error {
	s := sc.Storage
	switch s.Backend {
	case BackendFS:
		return nil
	case BackendS3:
	default:
		return []error{bad("serve.storage.backend", "%q (use fs or s3)", s.Backend)}
	}
	var problems []error
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			problems = append(problems, bad("serve.storage.endpoint", "%q (want an http:// or https:// URL such as https://s3.lab:8333)", s.Endpoint))
		case u.User != nil:
			problems = append(problems, bad("serve.storage.endpoint", "has credentials in it: remove them and put the keys in serve.storage.credentials_file"))
		case u.Path != "" && u.Path != "/", u.RawQuery != "":
			problems = append(problems, bad("serve.storage.endpoint", "%q has a path or query: give the store's address only, and the bucket in serve.storage.bucket", s.Endpoint))
		}
	}
	if s.Endpoint == "" && s.Region == "" {
		problems = append(problems, bad("serve.storage.region", "empty: without serve.storage.endpoint the bucket is on AWS S3, which needs its region"))
	}
	if s.Bucket == "" {
		problems = append(problems, bad("serve.storage.bucket", "empty: backend s3 needs the bucket's name"))
	} else if strings.ContainsAny(s.Bucket, "/ ") {
		problems = append(problems, bad("serve.storage.bucket", "%q: a bucket name has no slash or space (put a folder in serve.storage.prefix)", s.Bucket))
	}
	if p := s.Prefix; strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
		problems = append(problems, bad("serve.storage.prefix", "%q (use names separated by single slashes, such as pi-1/, without a leading slash, . or ..)", p))
	}
	if s.CredentialsFile == "" {
		problems = append(problems, bad("serve.storage.credentials_file", "empty: backend s3 needs a credentials file ([default] aws_access_key_id = …, aws_secret_access_key = …)"))
	}
	if s.Profile == "" {
		problems = append(problems, bad("serve.storage.profile", "empty (the default is default)"))
	}
	if s.SinglePutMax < 0 || s.SinglePutMax > maxPartSize {
		problems = append(problems, bad("serve.storage.single_put_max", "%v (between 0 and 5GiB, the largest PutObject of S3)", s.SinglePutMax))
	}
	switch {
	case s.PartSize < minPartSize || s.PartSize > maxPartSize:
		problems = append(problems, bad("serve.storage.part_size", "%v (between 5MiB and 5GiB, the limits of S3 multipart uploads)", s.PartSize))
	case sc.MaxEpisodeBytes > 0 && (int64(sc.MaxEpisodeBytes)+int64(s.PartSize)-1)/int64(s.PartSize) > maxParts:
		problems = append(problems, bad("serve.storage.part_size", "%v: an episode of serve.max_episode_bytes (%v) would need more than 10000 parts; raise part_size to at least %v",
			s.PartSize, sc.MaxEpisodeBytes, ByteSize((int64(sc.MaxEpisodeBytes)+maxParts*int64(MiB)-1)/(maxParts*int64(MiB)))*MiB))
	}
	return problems
}
