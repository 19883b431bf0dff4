"""The one rule that pairs a transform job's `.out` files with its inputs (batch decode and the
training test-set scorer both use it: grocery_common.transform_outputs)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from grocery_common.transform_outputs import find_outputs, list_outputs, match_outputs

OUT = "predictions/b1/run/"


class TestMatchOutputs:
    BATCH = ("incoming/a.jpg", "incoming/x/b.jpg", "incoming/y/b.jpg", "incoming/x/c.png")
    TEST_CHANNEL = ("Apple/a1.jpg", "Apple/a2.jpg", "Banana/b1.jpg")

    @pytest.mark.parametrize(
        "relative",
        [
            lambda key: key,  # <output>/<full key>.out (a ManifestFile with the bucket as prefix)
            lambda key: key.removeprefix("incoming/"),  # relative to a common prefix
        ],
        ids=["full-key", "relative-to-prefix"],
    )
    def test_any_layout_that_keeps_the_key_s_tail(self, relative):
        outs = [f"{OUT}{relative(key)}.out" for key in self.BATCH]
        matches, unmatched = match_outputs(self.BATCH, outs, OUT)
        assert matches == {key: f"{OUT}{relative(key)}.out" for key in self.BATCH}
        assert unmatched == []

    @pytest.mark.parametrize(
        "written",
        [
            "Apple/a1.jpg",  # relative to the S3Prefix test/ (the documented layout)
            "test/Apple/a1.jpg",  # keeping the channel folder
            "datasets/grocery/test/Apple/a1.jpg",  # keeping the whole key
            "a1.jpg",  # only the file name (unambiguous here)
        ],
    )
    def test_test_channel_paths_match_whatever_part_of_the_key_the_job_keeps(self, written):
        matches, unmatched = match_outputs(self.TEST_CHANNEL, [f"{OUT}{written}.out"], OUT)
        assert (matches, unmatched) == ({"Apple/a1.jpg": f"{OUT}{written}.out"}, [])

    def test_an_ambiguous_file_name_is_not_guessed(self):
        matches, unmatched = match_outputs(self.BATCH, [f"{OUT}b.jpg.out", f"{OUT}c.png.out"], OUT)
        assert matches == {"incoming/x/c.png": f"{OUT}c.png.out"}
        assert unmatched == [f"{OUT}b.jpg.out"]

    def test_outputs_of_no_input_and_second_outputs_are_reported(self):
        outs = [f"{OUT}incoming/zzz.jpg.out", f"{OUT}incoming/a.jpg.out", f"{OUT}a.jpg.out"]
        matches, unmatched = match_outputs(self.BATCH, outs, OUT)
        assert matches == {"incoming/a.jpg": f"{OUT}incoming/a.jpg.out"}
        assert unmatched == [f"{OUT}incoming/zzz.jpg.out", f"{OUT}a.jpg.out"]


@mock_aws
def test_listing_reads_every_page_and_only_out_files(aws_credentials):
    s3 = boto3.client("s3", region_name="us-east-1")
    # Pages of 10 keys instead of S3's 1000, so that 25 objects span three pages.
    s3.meta.events.register(
        "provide-client-params.s3.ListObjectsV2", lambda params, **_: params.update(MaxKeys=10)
    )
    pages = []
    s3.meta.events.register("after-call.s3.ListObjectsV2", lambda **kw: pages.append(1))
    s3.create_bucket(Bucket="outputs")
    keys = [f"incoming/{n:04}.jpg" for n in range(25)]
    for key in keys:
        s3.put_object(Bucket="outputs", Key=f"{OUT}{key}.out", Body=b"{}")
    s3.put_object(Bucket="outputs", Key=f"{OUT}_SUCCESS", Body=b"")
    s3.put_object(
        Bucket="outputs", Key="predictions/b1/other-run/incoming/0000.jpg.out", Body=b"{}"
    )

    assert sorted(list_outputs(s3, "outputs", OUT)) == [f"{OUT}{key}.out" for key in keys]
    assert len(pages) == 3  # 26 keys under the prefix, 10 a page
    matches, unmatched = find_outputs(s3, "outputs", OUT, keys)
    assert (len(matches), unmatched) == (25, [])
