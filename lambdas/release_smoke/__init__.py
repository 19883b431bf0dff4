"""The release's smoke request in serving_mode=serverless: can the new version serve?"""
