"""The healer Lambda: restores objects deleted from the production bucket.

Deployed as a zip holding only this package; it needs nothing beyond the
Lambda Python runtime (standard library and boto3). Every import inside the
package is relative so the zip can be loaded under any module name.
"""
