variable "flowplane_endpoint" {
  description = "Base URL of the Flowplane server."
  type        = string
  default     = "http://127.0.0.1:8080"
}

variable "flowplane_token" {
  description = "API token (FLOWPLANE_TOKEN works too). Ignored by the server until access control lands."
  type        = string
  default     = null
  sensitive   = true
}

variable "backup_encryption_key" {
  description = "Optional: stored as the secret BACKUP_KEY of platform.ops. Leave unset to skip it."
  type        = string
  default     = null
  sensitive   = true
}
