{{/* Resource names: <release>-quickstore[-<role>], at most 63 characters. */}}
{{- define "quickstore.fullname" -}}
{{- printf "%s-quickstore" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "quickstore.roleName" -}}
{{- printf "%s-%s" (include "quickstore.fullname" .root) .role | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "quickstore.labels" -}}
app.kubernetes.io/name: quickstore
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "quickstore.selector" -}}
app.kubernetes.io/name: quickstore
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "quickstore.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "quickstore.secretName" -}}
{{- default (include "quickstore.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "quickstore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "quickstore.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Environment of every QuickStore container: the ConfigMap, then each secret
key that is set (optional: a missing key leaves the variable unset).
*/}}
{{- define "quickstore.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "quickstore.fullname" . }}
env:
  {{- range $var, $key := dict "QS_AUTH_SIGNING_KEY" "auth-signing-key" "QS_KAFKA_SASL_USERNAME" "kafka-sasl-username" "QS_KAFKA_SASL_PASSWORD" "kafka-sasl-password" "QS_CQL_USERNAME" "cql-username" "QS_CQL_PASSWORD" "cql-password" "QS_PAYMENT_WEBHOOK_SECRET" "payment-webhook-secret" }}
  - name: {{ $var }}
    valueFrom:
      secretKeyRef:
        name: {{ include "quickstore.secretName" $ }}
        key: {{ $key }}
        optional: true
  {{- end }}
{{- end -}}

{{/*
Every topic QuickStore uses: name, partitions and configs — the same specs
the code creates (command-api/src/topology.rs, quickstore's saga topics,
the projectors' dead-letter topics, the revocation topic); a test keeps the two equal.
*/}}
{{- define "quickstore.topics" -}}
{{- $p := int .Values.config.partitions -}}
{{- $prefix := .Values.config.topicPrefix -}}
{{- $week := "604800000" -}}
{{- $isr := toString .Values.config.minInsyncReplicas -}}
{{- $forever := dict "cleanup.policy" "delete" "retention.ms" "-1" "retention.bytes" "-1" "min.insync.replicas" $isr -}}
{{- $compact := dict "cleanup.policy" "compact" "segment.ms" "3600000" "min.insync.replicas" $isr -}}
{{- $weekly := dict "cleanup.policy" "delete" "retention.ms" $week "min.insync.replicas" $isr -}}
{{- $topics := list -}}
{{- range $ctx := list "catalog" "inventory" "orders" "payments" "deliveries" "customers" -}}
{{- $topics = append $topics (dict "name" (printf "%s%s.commands" $prefix $ctx) "partitions" $p "config" $weekly) -}}
{{- $topics = append $topics (dict "name" (printf "%s%s.events" $prefix $ctx) "partitions" $p "config" $forever) -}}
{{- $topics = append $topics (dict "name" (printf "%s%s.snapshots" $prefix $ctx) "partitions" $p "config" $compact) -}}
{{- end -}}
{{- $topics = append $topics (dict "name" (printf "%scommand-outcomes" $prefix) "partitions" $p "config" $weekly) -}}
{{- $topics = append $topics (dict "name" (printf "%ssagas.order-fulfillment.events" $prefix) "partitions" $p "config" $forever) -}}
{{- $topics = append $topics (dict "name" (printf "%ssagas.order-fulfillment.replies" $prefix) "partitions" $p "config" $weekly) -}}
{{- $topics = append $topics (dict "name" (printf "%sauth.revocations" $prefix) "partitions" 1 "config" $weekly) -}}
{{- range $projection := list "orders" "catalog" "stock" "shipments" "payments" "sales" "customers" "audit" "saga-state" -}}
{{- $topics = append $topics (dict "name" (printf "%sprojector.%s.dlq" $prefix $projection) "partitions" 1 "config" $forever) -}}
{{- end -}}
{{- toJson $topics -}}
{{- end -}}
