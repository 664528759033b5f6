/* The fault proxy's provider mode: makes Ceph RGW answer as Amazon S3 does where the two differ and a backup
 * tool must notice. Today: SSE-KMS objects (--kms-bucket BUCKET[/PREFIX]: a bucket with default SSE-KMS
 * encryption, or its keys under PREFIX), whose ETags are not the MD5 of the bytes. Every ETag of such an object
 * that reaches the client is turned into another 32 hex digits (a fixed rotation of each digit, so "-N" stays
 * and the change is undone on the way back), its replies say x-amz-server-side-encryption: aws:kms, and every
 * ETag the client sends back (If-Match, the copy-source conditions, CompleteMultipartUpload's part list) is
 * turned back before RGW sees it, the request signed again with the test keys (--resign-keys). All rewrites
 * keep lengths, so request bodies and Content-Length stand. */
#ifndef FAULTPROXY_AWS_H
#define FAULTPROXY_AWS_H

#include <stdbool.h>
#include <stddef.h>

/* Options. Each returns false with a message on stderr for a bad value. */
bool aws_add_kms_bucket(const char *bucket);
bool aws_set_keys(const char *access_colon_secret);
bool aws_enabled(void);
/* After the options: false (with a message) if the mode is on without keys to sign with. */
bool aws_check(void);

/* The request head (start line to blank line, hl bytes, then avail - hl bytes of whatever follows) as the client
 * sent it. Returns 0 when nothing is to change, 1 when it was rewritten in place (head, and body if any), -1
 * when the body is needed first and has not fully arrived (call again with more), -2 when it cannot be handled
 * (a message on stderr; forward it as it is). */
int aws_request(char *msg, size_t hl, size_t avail);

/* A reply's head, for the request "METHOD URI" (copy_source: it had x-amz-copy-source). Returns a new head
 * (malloc'd, *len) when it changes, else NULL. *capture: the body carries ETags too; collect it whole and call
 * aws_body before sending anything. */
char *aws_response_head(const char *method, const char *uri, bool copy_source, const char *head, size_t hl,
                        size_t *len, bool *capture);
/* Rewrites a captured (de-chunked) reply body of a request for uri in place. */
void aws_body(const char *uri, char *body, size_t len);

/* Removes chunked framing from a complete chunked body in place; returns the data length. */
size_t aws_dechunk(char *body, size_t len);

#endif
