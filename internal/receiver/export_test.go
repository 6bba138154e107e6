package receiver

// UploadsWaiting is how many uploads wait for a slot (serve.max_uploads or
// max_uploads_per_host): tests wait for it instead of sleeping.
func (s *Server) UploadsWaiting() int { return s.uploads.waiting() }
