variable "flowplane_endpoint" {
  description = "Base URL of the Flowplane server."
  type        = string
  default     = "http://127.0.0.1:8080"
}

variable "flowplane_token" {
  description = "API token (FLOWPLANE_TOKEN works too). Git sources need an admin token; flows and namespaces an editor."
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

variable "flows_repository_url" {
  description = "Optional: a Git repository of flows (https://, ssh or file://) to register as a Git source."
  type        = string
  default     = null
}

variable "webhook_secret" {
  description = "Optional: the secret that signs the repository's push webhooks."
  type        = string
  default     = null
  sensitive   = true
}
