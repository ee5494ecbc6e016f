package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lcorp/licensing-controller/internal/report"
)

// licenseReport godoc
//
//	@Summary		The licence report: a signed summary of usage and deployment for the vendor
//	@Description	checksum is the SHA-256 (hex) of the canonical JSON of the report without checksum and signature (keys sorted, no whitespace, as for licences); signature is the hex Ed25519 signature of the same bytes by this installation's key (publicKey, base64). `licensing-controller report verify FILE` checks both offline. ?format=tar or Accept: application/x-tar answers a tar holding report.json.
//	@Tags			report
//	@Produce		json
//	@Produce		application/x-tar
//	@Security		BasicAuth
//	@Security		BearerAuth
//	@Param			accountId	path		int		true	"account id"
//	@Param			format		query		string	false	"tar"
//	@Success		200			{object}	report.Report
//	@Failure		401			{object}	Problem
//	@Failure		403			{object}	Problem	"LICENSE_USAGE missing"
//	@Failure		404			{object}	Problem	"ACCOUNT_NOT_FOUND"
//	@Failure		503			{object}	Problem
//	@Router			/controller/licensing/v1/account/{accountId}/report [get]
func (a *API) licenseReport(c *gin.Context) {
	r, err := a.report.Build(c.Request.Context(), accountID(c))
	if err != nil {
		a.fail(c, err)
		return
	}
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		a.fail(c, fmt.Errorf("encode report: %w", err))
		return
	}
	if strings.EqualFold(c.Query("format"), "tar") || strings.Contains(strings.ToLower(c.GetHeader("Accept")), "application/x-tar") {
		tarred, err := report.Tar(body, r.Timestamp)
		if err != nil {
			a.fail(c, err)
			return
		}
		c.Header("Content-Disposition", `attachment; filename="`+report.TarName(r.Timestamp)+`"`)
		c.Data(http.StatusOK, "application/x-tar", tarred)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}
