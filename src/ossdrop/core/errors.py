"""OSS error codes: one table maps each wire code to its HTTP status and default message.

Every failure the store reports to a client is an :class:`OSSError` carrying one of these codes; the HTTP layer
turns it into the error XML of oss-protocol.md §1.7/§5.1. Statuses follow §5.1 so that oss2 maps
``(status, Code)`` to the right exception class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# code -> (HTTP status, default message). Messages follow real OSS wording where the spec records it.
ERROR_TABLE: Mapping[str, tuple[int, str]] = {
    "AccessDenied": (403, "You have no right to access this object because of bucket acl."),
    "AccessForbidden": (403, "CORSResponse: This CORS request is not allowed."),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "BadRequest": (400, "Bad request."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "CallbackFailed": (203, "Callback failed."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed size."),
    "FieldItemTooLong": (400, "Your form field is too long."),
    "FileAlreadyExists": (409, "The object you specified already exists and can not be overwritten."),
    "ImageTooLarge": (400, "The image is too large to be processed."),
    "IncorrectNumberOfFilesInPOSTRequest": (400, "POST requires exactly one file upload per request."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The OSS Access Key Id you provided does not exist in our records."),
    "InvalidArgument": (400, "Invalid argument."),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified was invalid."),
    "InvalidEncryptionAlgorithmError": (400, "The encryption request you specified is not valid."),
    "InvalidObjectName": (400, "The specified object is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found or does not match the ETag."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "InvalidPolicyDocument": (400, "Invalid Policy: Invalid JSON."),
    "InvalidRange": (416, "The requested range cannot be satisfied."),
    "InvalidRequest": (400, "Invalid request."),
    "InvalidTargetType": (400, "The symlink target object type is not supported."),
    "MalformedPOSTRequest": (400, "The body of your POST request is not well-formed multipart/form-data."),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate against our schema."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingArgument": (400, "Missing argument."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchStyle": (404, "The specified style does not exist."),
    "NoSuchUpload": (
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload "
        "may have been aborted or completed.",
    ),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented."),
    "NotModified": (304, "Not Modified"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold."),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current time is too large."),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you "
        "provided. Check your key and signing method.",
    ),
    "TooManyBuckets": (400, "You have attempted to create more buckets than allowed."),
}


@dataclass
class OSSError(Exception):
    """A client-visible OSS failure: ``code`` is a key of :data:`ERROR_TABLE`.

    ``extra`` holds additional child elements of the error XML (e.g. ``BucketName``, ``Key``,
    ``StringToSign``, ``ArgumentName``) in insertion order; ``ec`` is the optional OSS error-detail code.
    """

    code: str
    message: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    ec: str = ""
    status: int = 0

    def __post_init__(self) -> None:
        status, default = ERROR_TABLE.get(self.code, (400, ""))
        if not self.status:
            self.status = status
        if not self.message:
            self.message = default
        super().__init__(f"{self.code}: {self.message}")
